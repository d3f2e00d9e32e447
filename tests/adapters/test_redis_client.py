"""What the program's Redis client does when its connection fails (adapters/redis,
CONNECTION_POLICY), asserted on the client itself rather than on redis-py's defaults, which
change between releases: a command is never sent twice, a connection Redis closed while idle
is replaced before the next command, and a Redis that stops answering fails the call.

A relay in front of the test Redis (tests/adapters/redis_proxy.py) breaks a connection while a
command is on it, which CLIENT KILL cannot do.
"""

from __future__ import annotations

import ast
import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from adapters.redis import redis_client
from tests.adapters.redis_proxy import RedisProxy
from tests.adapters.redis_support import delete_prefixed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    return f"sniper-test-{secrets.token_hex(6)}"


@pytest.fixture
async def admin(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    """A client straight to the test Redis, to look at what the relayed commands did."""
    client = redis_client(redis_url)
    try:
        yield client
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[RedisProxy]:
    async with RedisProxy(redis_url) as relay:
        yield relay


@pytest.mark.redis
async def test_a_command_whose_reply_is_lost_fails_and_is_not_sent_again(
    proxy: RedisProxy, admin: Redis, prefix: str,
) -> None:
    """The command ran, its reply never came: the caller gets the error. Sending it again
    would count twice (or take a lease twice): only the caller knows whether it may."""
    key = f"{prefix}:hits"
    client = redis_client(proxy.url)
    try:
        assert await client.incr(key) == 1
        proxy.cut_after(b"INCR")
        with pytest.raises(RedisConnectionError):
            await client.incr(key)
        assert proxy.sent(b"INCR") == 2
        assert await admin.get(key) == b"2", "it ran once, and only once"
        assert await client.incr(key) == 3  # the next command, over a new connection
        assert proxy.connections == 2
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_command_that_never_reached_redis_fails_too(proxy: RedisProxy, admin: Redis, prefix: str) -> None:
    key = f"{prefix}:hits"
    client = redis_client(proxy.url)
    try:
        assert await client.ping()
        proxy.cut_before(b"INCR")
        with pytest.raises(RedisConnectionError):
            await client.incr(key)
        assert await admin.get(key) is None
        assert proxy.connections == 1, "no second attempt"
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_connection_redis_closed_while_idle_is_replaced_before_the_next_command(
    redis_url: str, admin: Redis, prefix: str,
) -> None:
    """What a Redis restart (or CLIENT KILL) does to a pooled connection: nothing was on it,
    so the next command goes out on a fresh one and runs once."""
    key = f"{prefix}:hits"
    client = redis_client(redis_url, name=prefix)
    try:
        assert await client.incr(key) == 1
        [idle] = [c["id"] for c in await admin.client_list() if c["name"] == prefix]
        assert await admin.client_kill_filter(_id=idle) == 1
        assert await client.incr(key) == 2
        [fresh] = [c["id"] for c in await admin.client_list() if c["name"] == prefix]
        assert fresh != idle
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_redis_that_stops_answering_fails_the_call_instead_of_holding_it(
    proxy: RedisProxy, prefix: str,
) -> None:
    """Behind a partition no reply comes and no connection closes. The call fails after the
    command timeout (a few seconds; the bound here is only against hanging), once."""
    client = redis_client(proxy.url)
    try:
        assert await client.ping()
        proxy.stall()
        async with asyncio.timeout(60):
            with pytest.raises(RedisTimeoutError):
                await client.get(f"{prefix}:k")
        assert proxy.sent(b"GET") == 1 and proxy.connections == 1, "no second attempt"
    finally:
        await client.aclose()


async def test_a_unix_socket_url_gets_the_same_client() -> None:
    """TCP keepalive is for TCP only: a unix:// URL still opens (and fails as Redis does)."""
    client = redis_client("unix:///nonexistent/redis.sock")
    try:
        with pytest.raises(RedisConnectionError):
            await client.ping()
    finally:
        await client.aclose()


# --- one way to open Redis ----------------------------------------------------------------

_CLIENT_CLASSES = {"Redis", "StrictRedis", "ConnectionPool", "BlockingConnectionPool", "Queue", "RedisQueue"}


def redis_openings(source: str) -> list[int]:
    """Lines of `source` that open a Redis client or pool other than through redis_client."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("redis"):
            found += [node.lineno for alias in node.names if alias.name == "from_url"]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _CLIENT_CLASSES - {"Queue", "RedisQueue"}:
            found.append(node.lineno)
        elif isinstance(func, ast.Attribute) and func.attr == "from_url":
            owner = func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name in _CLIENT_CLASSES or name in {"redis", "asyncio"}:
                found.append(node.lineno)
    return found


def test_the_program_opens_redis_only_through_redis_client() -> None:
    """So CONNECTION_POLICY holds for every connection: the HTTP app, the worker, `sniper agents`
    and SAQ's job queue (which is handed a client made by redis_client)."""
    sample = "from redis.asyncio import Redis\na = Redis.from_url(u)\nb = Redis(host=h)\nc = saq.Queue.from_url(u)\n"
    assert redis_openings(sample) == [2, 3, 4]
    the_one = ROOT / "adapters" / "redis" / "__init__.py"
    elsewhere = {
        str(path.relative_to(ROOT)): lines
        for package in ("domain", "application", "adapters", "entrypoints")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != the_one and (lines := redis_openings(path.read_text()))
    }
    assert elsewhere == {}
    assert len(redis_openings(the_one.read_text())) == 1
