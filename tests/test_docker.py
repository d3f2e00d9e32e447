"""The compose file and the image (no Docker engine here to run them): every service the product
needs, each with a health check, every command one the `sniper` CLI knows, and safe defaults.
tests/test_compose_processes.py runs the services as local processes."""

from pathlib import Path

import pytest

from entrypoints.cli import _parser

yaml = pytest.importorskip("yaml")
DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())


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


def test_the_api_is_published_on_this_machine_only() -> None:
    assert COMPOSE["services"]["api"]["ports"] == ["127.0.0.1:8080:8080"]


def test_the_worker_paper_trades_on_mexc_unless_told_otherwise() -> None:
    """Never a replay by default: it would write a demo into the deployment's database."""
    environment = COMPOSE["services"]["worker"]["environment"]
    assert environment["SNIPER_MARKET"] == "${SNIPER_MARKET:-mexc}"
    assert environment["SNIPER_LIVE"] == "${SNIPER_LIVE:-0}"


def test_compose_stops_before_starting_anything_without_an_encryption_key() -> None:
    for name in ("migrate", "api", "worker"):
        key = COMPOSE["services"][name]["environment"]["ENCRYPTION_KEY"]
        assert key.startswith("${ENCRYPTION_KEY:?") and "sniper init" in key, (name, key)


def test_the_development_identity_on_the_network_is_off_unless_the_env_file_turns_it_on() -> None:
    assert COMPOSE["services"]["api"]["environment"]["SNIPER_DEV_IDENTITY_ON_NETWORK"] == \
        "${SNIPER_DEV_IDENTITY_ON_NETWORK:-0}"
    for name in ("migrate", "worker"):
        assert "SNIPER_DEV_IDENTITY_ON_NETWORK" not in COMPOSE["services"][name]["environment"]


def test_compose_reads_docker_dot_env_which_never_enters_the_image() -> None:
    """`sniper init` writes docker/.env (compose's project directory is docker/); ./.env is local commands'."""
    from entrypoints.init import DEFAULT_PATH

    assert Path("docker") / ".env" == DEFAULT_PATH
    compose_text = (DOCKER / "compose.yaml").read_text()
    assert "--env-file .env" not in compose_text and "docker compose -f docker/compose.yaml up" in compose_text
    # Docker's ignore patterns match from the context's root: `.env` alone would leave docker/.env in.
    ignored = (DOCKER.parent / ".dockerignore").read_text().splitlines()
    assert {".env", "**/.env"} <= set(ignored)


def test_the_image_installs_the_locked_versions() -> None:
    assert "pip install --no-cache-dir -c requirements.lock ." in (DOCKER / "Dockerfile").read_text()
