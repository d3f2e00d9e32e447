"""Shared test fixtures: the services some tests need (the local Postgres and Redis).

Which Postgres and Redis: SNIPER_TEST_DATABASE_URL and SNIPER_TEST_REDIS_URL (README, "Tests
read two more"), for a developer whose 127.0.0.1:5432/test or Redis db 0 holds something else.
Every test reaches them through the fixtures and helpers here, never through a URL of its own.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.security.fake_kinde import FakeKinde

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ServiceUrlError(ValueError):
    """A SNIPER_TEST_* variable that cannot name a test service."""


def _postgres_url(env: Mapping[str, str]) -> str:
    """The test database's URL, for asyncpg; the database must exist (new ones are made from it)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = env.get("SNIPER_TEST_DATABASE_URL", "").strip() or DEFAULT_POSTGRES_URL
    try:
        url = make_url(raw)
    except ArgumentError:
        url = None
    if url is None or url.drivername not in {"postgresql", "postgres", "postgresql+asyncpg"} or not url.database:
        shown = url.render_as_string(hide_password=True) if url is not None else "(not a URL)"
        raise ServiceUrlError(
            f"SNIPER_TEST_DATABASE_URL must be a postgresql+asyncpg://user@host:port/database URL, got {shown}")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _redis_url(env: Mapping[str, str]) -> str:
    raw = env.get("SNIPER_TEST_REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        shown = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if "://" in raw else "(not a URL)"
        raise ServiceUrlError(f"SNIPER_TEST_REDIS_URL must be a redis:// or rediss:// URL with a host, got {shown}")
    return raw


def pytest_configure(config: pytest.Config) -> None:
    for read in (_postgres_url, _redis_url):
        try:
            read(os.environ)
        except ServiceUrlError as exc:
            raise pytest.UsageError(str(exc)) from None


try:
    POSTGRES_URL = _postgres_url(os.environ)
    REDIS_URL = _redis_url(os.environ)
except ServiceUrlError:  # pytest_configure says why, in one line
    POSTGRES_URL, REDIS_URL = DEFAULT_POSTGRES_URL, DEFAULT_REDIS_URL


def postgres_database_url(name: str) -> str:
    """The URL of database `name` on the test Postgres (its host, port, user, password and options)."""
    from sqlalchemy.engine import make_url

    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def postgres_dsn(url: str = POSTGRES_URL) -> str:
    """A test database's URL as asyncpg.connect takes it. The configured database is where new
    databases are created from (CREATE DATABASE, DROP DATABASE)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _where(url: str) -> str:
    """Host and port of a service URL, for messages (never its password)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    return f"{parts.hostname}:{parts.port}"


POSTGRES_UNREACHABLE = (
    f"Postgres not reachable at {_where(POSTGRES_URL)} (SNIPER_TEST_DATABASE_URL) — start it "
    "(pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or run .ci/run"
)


def services_required() -> bool:
    """In CI (or when asked to), a missing service is a failure, not a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("SNIPER_REQUIRE_SERVICES") == "1"


def _probe_postgres(url: str, timeout: float = 3.0) -> str | None:
    """None when a connection and a query work, else why not."""
    import asyncpg

    dsn = postgres_dsn(url)

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
    """The URL of the test Postgres's database (SNIPER_TEST_DATABASE_URL); skips (or fails in CI)
    when it does not answer."""
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
        conn = await asyncpg.connect(postgres_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_aside(lambda: admin(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_database_url(name)
    finally:
        _run_aside(lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


REDIS_UNREACHABLE = (
    f"Redis not reachable at {_where(REDIS_URL)} (SNIPER_TEST_REDIS_URL) — start it "
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
    """The URL of the test Redis (SNIPER_TEST_REDIS_URL, database 0 by default); skips (or fails
    in CI) when it does not answer. Tests share its database: each uses its own key prefix and
    deletes its keys."""
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
