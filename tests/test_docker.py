"""The compose file (no Docker engine here to run it): every service the product needs, each
with a health check, and every command one the `sniper` CLI knows."""

from pathlib import Path

import pytest

from entrypoints.cli import _parser

yaml = pytest.importorskip("yaml")
COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker" / "compose.yaml").read_text())


def test_the_api_the_worker_postgres_and_redis_start_with_health_checks() -> None:
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    for name in ("postgres", "redis", "api", "worker"):
        assert "healthcheck" in services[name], name
    assert services["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_command_is_one_the_cli_knows() -> None:
    parser = _parser()
    for name, service in COMPOSE["services"].items():
        command = service.get("command")
        if command and name not in ("postgres", "redis"):
            parser.parse_args(command)  # exits (SystemExit) on an unknown command or option
    worker_check = COMPOSE["services"]["worker"]["healthcheck"]["test"]
    assert worker_check[:2] == ["CMD", "sniper"]
    parser.parse_args(worker_check[2:])
