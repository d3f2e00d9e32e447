"""docker/compose.yaml as local processes (no Docker engine runs here).

Each sniper service's `command` runs with its compose `environment`, interpolated from the
`docker/.env` that `sniper init` wrote, as compose would, in a directory without a `./.env` (as the
image's working directory). Only what a container gets from its neighbours is
swapped: the hosts `postgres` and `redis` for the local services (a fresh database, a Redis prefix
of this test's own), MEXC for the local fake, the API's port for a free one. `migrate` must exit 0;
`serve` and `worker` must pass their compose health checks and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from entrypoints.cli import main
from entrypoints.config import ENV_VARS
from entrypoints.init import COMPOSE_DEFAULTS
from entrypoints.keys import new_key
from tests.adapters.redis_support import delete_matching
from tests.fakes.mexc_http import CALENDAR, FakeMexcServer

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
SNIPER = str(Path(sys.executable).with_name("sniper"))  # .venv/bin/sniper, the image's ENTRYPOINT
SNIPER_SERVICES = ("migrate", "api", "worker")
# Seconds. A cold `sniper` process takes about 1 s to import on a quiet machine, over 10 s on a loaded
# 2-core one; a health check is such a process too.
HEALTHY_WITHIN = 120.0
STOPS_WITHIN = 90.0

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}: what the file uses.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?)([^}]*))?\}")


class ComposeRefused(Exception):
    """What `docker compose` would stop with before starting anything."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    def value_of(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        value = variables.get(name)
        if operator in (":?", "?") and (value is None or (operator == ":?" and value == "")):
            raise ComposeRefused(f"required variable {name} is missing a value: {argument}")
        if operator == ":-" and not value or operator == "-" and value is None:
            return argument
        return value or ""

    return _VARIABLE.sub(value_of, text)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped (all `sniper init` writes)."""
    variables = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name.strip()] = value.strip()
    return variables


def compose_environment(service: str, variables: Mapping[str, str]) -> dict[str, str]:
    environment = COMPOSE["services"][service]["environment"]
    assert isinstance(environment, dict), f"{service}: environment as a mapping"
    return {name: interpolate(str(value), variables) for name, value in environment.items()}


def compose_variables() -> dict[str, str | None]:
    """Every variable the compose file interpolates: its default, or None when it is required."""
    found: dict[str, str | None] = {}
    for match in _VARIABLE.finditer((ROOT / "docker" / "compose.yaml").read_text()):
        name, operator, argument = match.groups()
        found[name] = None if operator in (":?", "?") else argument if operator in (":-", "-") else ""
    return found


def local_environment(compose_env: Mapping[str, str], *, database_url: str, redis_url: str, redis_prefix: str,
                      mexc_url: str) -> dict[str, str]:
    """The compose environment, with the neighbours a container would reach replaced by local ones;
    none of this shell's sniper settings leak in."""
    assert urlsplit(compose_env["DATABASE_URL"]).hostname == "postgres", compose_env["DATABASE_URL"]
    assert urlsplit(compose_env["REDIS_URL"]).hostname == "redis", compose_env["REDIS_URL"]
    ours = {var.name for var in ENV_VARS}
    env = {k: v for k, v in os.environ.items() if k not in ours}
    env.update(compose_env)
    env.update(DATABASE_URL=database_url, REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix,
               MEXC_BASE_URL=mexc_url, MEXC_WEB_URL=mexc_url,
               MEXC_WS_URL="ws://127.0.0.1:9/ws",  # never the real MEXC: a closed local port
               PYTHONUNBUFFERED="1")
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api_command(port: int) -> list[str]:
    command = list(COMPOSE["services"]["api"]["command"])
    command[command.index("--port") + 1] = str(port)
    return command


def health_check(service: str, port: int) -> list[str]:
    """The service's compose health check, run here: the image's `python` and `sniper` are ours."""
    test = list(COMPOSE["services"][service]["healthcheck"]["test"])
    assert test[0] == "CMD", test
    program, *args = test[1:]
    program = {"python": sys.executable, "sniper": SNIPER}[program]
    return [program, *(arg.replace("127.0.0.1:8080/", f"127.0.0.1:{port}/") for arg in args)]


class Service:
    """One compose service as a subprocess, its output in files (a full pipe never blocks it)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.stdout, self.stderr = workdir / f"{name}.out", workdir / f"{name}.err"
        self.proc: asyncio.subprocess.Process | None = None
        self.workdir = workdir

    async def start(self) -> None:
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(SNIPER, *self.argv, env=self.env, cwd=self.workdir,
                                                             stdout=out, stderr=err)

    def output(self) -> str:
        return (f"--- {self.name} stdout\n{self.stdout.read_text()[-3000:]}\n"
                f"--- stderr\n{self.stderr.read_text()[-6000:]}")

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), STOPS_WITHIN)
        except TimeoutError:
            self.kill()
            raise AssertionError(f"{self.name} still ran {STOPS_WITHIN} s after SIGTERM\n{self.output()}") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


async def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{argv} still ran after {timeout} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_healthy(service: Service, check: list[str]) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN
    last = ""
    while time.monotonic() < deadline:
        assert service.proc is not None
        if service.proc.returncode is not None:
            raise AssertionError(f"{service.name} exited {service.proc.returncode} before it was healthy\n"
                                 f"{service.output()}")
        code, out, err = await run(check, service.env, service.workdir)
        if code == 0:
            return
        last = f"exit {code}: {out.strip()[-1000:]} {err.strip()[-1000:]}"
        await asyncio.sleep(1)
    raise AssertionError(f"{service.name}: health check {check[1:]} did not pass within {HEALTHY_WITHIN} s "
                         f"(last: {last})\n{service.output()}")


async def wait_for_calendar_poll(fake: FakeMexcServer, worker: Service) -> None:
    deadline = time.monotonic() + HEALTHY_WITHIN
    while not fake.hits[CALENDAR]:
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker never asked (the fake) MEXC for its calendar\n{worker.output()}")
        await asyncio.sleep(0.2)


async def _postgres_admin(postgres_url: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    conn = await asyncpg.connect(
        make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def sniper_init(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`sniper init` run at `root` as at the repository's: it writes docker/.env, where compose reads it."""
    (root / "docker").mkdir()
    out, err = io.StringIO(), io.StringIO()
    with monkeypatch.context() as here:
        here.chdir(root)
        assert main(["init"], out, err) == 0, err.getvalue()
    assert "docker compose -f docker/compose.yaml up --build" in out.getvalue()
    assert not (root / ".env").exists()
    return root / "docker" / ".env"


# --- the compose file --------------------------------------------------------------------------

def test_a_missing_encryption_key_stops_compose_naming_sniper_init() -> None:
    with pytest.raises(ComposeRefused, match=r"ENCRYPTION_KEY is missing a value: run: sniper init"):
        compose_environment("api", {})


def test_sniper_init_lists_every_other_compose_variable_with_its_compose_default() -> None:
    variables = compose_variables()
    assert variables.pop("ENCRYPTION_KEY") is None  # required: `sniper init` writes a fresh one
    assert variables.pop("SNIPER_DEV_IDENTITY_ON_NETWORK") == "0"  # `sniper init` writes it on, loudly
    assert dict(COMPOSE_DEFAULTS) == variables


# --- the services as processes -----------------------------------------------------------------

@pytest.mark.parametrize(("env_lines", "why"), [
    # No Kinde and no opt-in: the development identity on 0.0.0.0 would be anyone's.
    ([], "the development identity (no KINDE_DOMAIN) is refused on 0.0.0.0"),
    # Production without Kinde: refused whatever the address and the opt-in.
    (["SNIPER_ENV=production", "SNIPER_DEV_IDENTITY_ON_NETWORK=1"], "SNIPER_ENV=production needs KINDE_DOMAIN"),
])
def test_the_compose_api_refuses_the_development_identity_on_the_network(
        tmp_path: Path, env_lines: list[str], why: str) -> None:
    env_file = tmp_path / "docker.env"  # compose's file, not the ./.env local commands read
    env_file.write_text("\n".join([f"ENCRYPTION_KEY={new_key()}", *env_lines]) + "\n")
    env = local_environment(compose_environment("api", read_env_file(env_file)),
                            database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none",  # never reached
                            redis_url="redis://127.0.0.1:9/0", redis_prefix="h4-unused", mexc_url="http://127.0.0.1:9")
    try:
        done = subprocess.run([SNIPER, *api_command(free_port())], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise AssertionError("the API started (still running after 60 s) instead of refusing") from None
    assert done.returncode == 2, done.stderr
    # One line saying why (a log line announcing the start may come before it).
    refusals = [line for line in done.stderr.splitlines() if line.startswith("sniper: ")]
    assert len(refusals) == 1 and why in refusals[0], done.stderr
    assert done.stderr.endswith(refusals[0] + "\n") and "Traceback" not in done.stderr and done.stdout == ""


async def test_each_compose_service_runs_as_shipped_and_passes_its_health_check(
        tmp_path: Path, postgres_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    variables = read_env_file(sniper_init(tmp_path, monkeypatch))
    database = f"h4_compose_{secrets.token_hex(4)}"
    prefix = f"h4-compose-{secrets.token_hex(4)}"
    from sqlalchemy.engine import make_url

    database_url = make_url(postgres_url).set(database=database).render_as_string(hide_password=False)
    await _postgres_admin(postgres_url, f'CREATE DATABASE "{database}"')
    services: list[Service] = []
    try:
        async with FakeMexcServer() as fake:
            def env_of(name: str) -> dict[str, str]:
                return local_environment(compose_environment(name, variables), database_url=database_url,
                                         redis_url=redis_url, redis_prefix=prefix, mexc_url=fake.base_url)

            port = free_port()
            code, out, err = await run(
                [SNIPER, *COMPOSE["services"]["migrate"]["command"]], env_of("migrate"), tmp_path
            )
            assert code == 0, out + err
            api = Service("api", api_command(port), env_of("api"), tmp_path)
            worker = Service("worker", list(COMPOSE["services"]["worker"]["command"]), env_of("worker"), tmp_path)
            services += [api, worker]
            for service in services:
                await service.start()
            await wait_healthy(api, health_check("api", port))
            await wait_healthy(worker, health_check("worker", port))
            await wait_for_calendar_poll(fake, worker)  # MEXC's calendar: the worker is not replaying a demo
            assert fake.accepted_orders() == []  # paper: nothing reached the exchange's order book
            stopped: dict[str, Any] = {}
            for service in services:
                stopped[service.name] = await service.stop()
            assert stopped == {"api": 0, "worker": 0}, "\n".join(s.output() for s in services)
    finally:
        for service in services:
            service.kill()
        for service in services:
            if service.proc is not None:
                await service.proc.wait()
        await _postgres_admin(postgres_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await delete_matching(redis_url, f"*{prefix}*")
