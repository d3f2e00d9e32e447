"""Shared test fixtures: the services some tests need (the local Postgres and Redis)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.security.fake_kinde import FakeKinde

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_UNREACHABLE = (
    "Postgres not reachable at 127.0.0.1:5432 — start it "
    "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or run .ci/run"
)


def services_required() -> bool:
    """In CI (or when asked to), a missing service is a failure, not a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("SNIPER_REQUIRE_SERVICES") == "1"


def _probe_postgres(url: str, timeout: float = 3.0) -> str | None:
    """None when a connection and a query work, else why not."""
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return _why_not(probe, timeout)


def _why_not(probe, timeout: float) -> str | None:  # noqa: ANN001
    """Run a probe coroutine on its own thread and loop (leaving pytest-asyncio's loops alone):
    None when it works, else why not."""
    try:
        _run_aside(probe, timeout=timeout + 2)
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return f"{type(exc).__name__}: {exc}"
    return None


def _require(problem: str | None, unreachable: str) -> None:
    """Skip a test needing an absent service on a laptop; fail it in CI."""
    if problem is None:
        return
    if services_required():
        pytest.fail(f"{unreachable} [required: CI or SNIPER_REQUIRE_SERVICES=1; {problem}]", pytrace=False)
    pytest.skip(unreachable)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of the local test Postgres; skips (or fails in CI) when it does not answer."""
    _require(_probe_postgres(POSTGRES_URL), POSTGRES_UNREACHABLE)
    yield POSTGRES_URL



def _run_aside(coro_factory, timeout: float = 30):  # noqa: ANN001, ANN202
    """Run a coroutine on its own loop in a thread: safe from sync fixtures and inside test loops."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result(timeout=timeout)


@pytest.fixture
def fresh_postgres_database(postgres_url: str) -> Iterator[str]:
    """A new, empty Postgres database for one test, dropped afterwards. Yields its URL."""
    import secrets

    import asyncpg

    name = f"sniper_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_aside(lambda: admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _run_aside(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_UNREACHABLE = (
    "Redis not reachable at 127.0.0.1:6379 — start it "
    "(redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no) or run .ci/run"
)


def _probe_redis(url: str, timeout: float = 2.0) -> str | None:
    """None when a PING is answered, else why not."""
    from redis.asyncio import Redis

    async def probe() -> None:
        client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            if not await client.ping():
                raise RuntimeError("PING was not answered with PONG")
        finally:
            await client.aclose()

    return _why_not(probe, timeout)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the local Redis; skips (or fails in CI) when it does not answer.
    Tests share its database 0: each uses its own key prefix and deletes its keys."""
    _require(_probe_redis(REDIS_URL), REDIS_UNREACHABLE)
    yield REDIS_URL


@pytest.fixture
def kinde() -> Iterator[FakeKinde]:
    """A local Kinde (OIDC issuer with JWKS and token endpoints) on 127.0.0.1, for the sign-in and
    token verification tests."""
    fake = FakeKinde().start()
    try:
        yield fake
    finally:
        fake.stop()
