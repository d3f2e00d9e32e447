"""Real server restarts under a running worker: a Postgres cluster and a Redis server of the
test's own (the shared CI services are left alone) are stopped hard and started again while a
snipe is armed and firing. The worker recovers: the snipe ends filled exactly once, no event
is lost or written twice, and SIGTERM still stops it cleanly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import services_required
from tests.worker.test_worker_process import start_worker

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").is_dir() \
    else None


def _unavailable(why: str) -> None:
    if services_required():
        pytest.fail(f"{why} [required: CI or SNIPER_REQUIRE_SERVICES=1]", pytrace=False)
    pytest.skip(why)


def server_env() -> dict[str, str]:
    """The environment of a server of the test's own: it stands for an external service, so it
    keeps real time, as the shared Postgres and Redis do, when the tests run under faketime
    (tests/time_sensitive.txt); redis-server does not even start with libfaketime preloaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    preload = [lib for lib in env.pop("LD_PRELOAD", "").split(":") if lib and "faketime" not in lib]
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivatePostgres:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        assert PG_BIN is not None
        cmd = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, env=server_env())

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "-l", str(self.data.parent / "log"), "-w", "start")

    def crash(self) -> None:
        """Immediate shutdown: connections die, no checkpoint (a crash, as far as clients know)."""
        self._ctl("-m", "immediate", "-w", "stop")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        _unavailable("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) to start a private cluster")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        _unavailable("running as root without runuser: cannot start a private Postgres cluster")
    # Its own directory under /tmp: the postgres user must reach it (pytest's tmp_path is 0700 root).
    home = Path(tempfile.mkdtemp(prefix="sniper-pg-"))
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    cmd = [str(PG_BIN / "initdb"), "-D", str(home / "data"), "-A", "trust", "-U", "postgres"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=server_env())
    pg = PrivatePostgres(home / "data", free_port())
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg.crash()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_env(),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("private redis-server did not start")

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


_Redis = TypeVar("_Redis", bound=PrivateRedis)


@contextlib.contextmanager
def redis_running(server: _Redis) -> Iterator[_Redis]:
    """A private redis-server started (none to start: skipped, or failed where the services are
    required), and killed at the end if it still runs."""
    if shutil.which("redis-server") is None:
        _unavailable("no redis-server binary to start a private Redis")
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.crash()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with redis_running(PrivateRedis(free_port())) as redis:
        yield redis


def _restart_during_the_snipe(tmp_path: Path, service, **env: str) -> list[str]:  # noqa: ANN001
    """Crash the service once the snipe is armed, start it again after the launch instant, and
    return the worker's output. The scenario launches 5 s after the worker starts."""
    proc, out, _ = start_worker(tmp_path, SNIPER_RECONCILE_POLL_SECONDS="1", **env)
    try:
        out.wait_for("start-up reconciliation:", timeout=60)
        out.wait_for("executor armed for launch", timeout=30)
        service.crash()
        time.sleep(3.5)  # the launch passes while the service is down
        service.start()
        out.wait_for("FILLED", timeout=60)
        time.sleep(1.0)  # let the agents run a few more rounds against the restarted service
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, "\n".join(out.lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    out.join(timeout=5)
    for pipe in (proc.stdout, proc.stderr):  # read to the end by now: closed here, not left to the collector
        if pipe is not None:
            pipe.close()
    return out.lines


def _assert_one_clean_snipe(types_by_stream: list[tuple[str, int, str]]) -> None:
    streams: dict[str, list[int]] = {}
    for stream, version, _ in types_by_stream:
        streams.setdefault(stream, []).append(version)
    for stream, versions in streams.items():
        assert versions == list(range(1, len(versions) + 1)), f"{stream}: versions {versions}"
    names = [name for _, _, name in types_by_stream]
    assert names.count("SnipeOrderSubmitted") == 1
    assert names.count("SnipeOrderFilled") == 1
    assert names.count("PositionOpened") == 1


def test_postgres_restarted_mid_snipe(tmp_path: Path, private_postgres: PrivatePostgres) -> None:
    lines = _restart_during_the_snipe(tmp_path, private_postgres, DATABASE_URL=private_postgres.url)
    import asyncio

    import asyncpg

    async def rows() -> list[tuple[str, int, str]]:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{private_postgres.port}/postgres")
        try:
            return [tuple(r) for r in await conn.fetch(
                "SELECT stream_id, version, event_type FROM events ORDER BY position")]
        finally:
            await conn.close()

    _assert_one_clean_snipe(asyncio.run(rows()))
    assert any("crashed" in line or "failed" in line for line in lines), "the outage was not noticed"


def test_redis_restarted_mid_snipe(tmp_path: Path, private_redis: PrivateRedis) -> None:
    _restart_during_the_snipe(tmp_path, private_redis, REDIS_URL=private_redis.url, REDIS_PREFIX="restart")
    with sqlite3.connect(tmp_path / "worker.db") as conn:
        rows = list(conn.execute("SELECT stream_id, version, event_type FROM events ORDER BY position"))
    _assert_one_clean_snipe(rows)
