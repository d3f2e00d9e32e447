"""Fixtures of the crash tests: the fake exchange, a fresh Postgres database, Redis key
prefixes of the test's own, and the subprocesses (killed at the end, whatever happened)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.adapters.redis_support import delete_matching
from tests.crash.support import Children, fake_exchange
from tests.fakes.mexc_http import FakeMexcServer


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
    await delete_matching(redis_url, f"{prefix}:*")


@pytest.fixture
async def queue_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test alone on the shared Redis; its keys, its SAQ queue's
    (`saq:<prefix>…`) included, are deleted afterwards."""
    prefix = f"queue{secrets.token_hex(4)}"
    yield prefix
    await delete_matching(redis_url, f"*{prefix}*")
