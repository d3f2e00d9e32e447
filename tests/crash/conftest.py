"""Fixtures of the crash tests: the fake exchange, a fresh Postgres database, a Redis key
prefix of the test's own, and the subprocesses (killed at the end, whatever happened)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.mexc.fake.http import FakeMexcServer
from tests.crash.support import Children, fake_exchange


@pytest.fixture
async def fake() -> AsyncIterator[FakeMexcServer]:
    async with fake_exchange() as server:
        yield server


@pytest.fixture
async def children() -> AsyncIterator[Children]:
    group = Children()
    try:
        yield group
    finally:
        await group.close()


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix for this test alone; its keys are deleted afterwards."""
    prefix = f"crash{secrets.token_hex(4)}"
    yield prefix
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
