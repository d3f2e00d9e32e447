"""RedisRateWindows: an IP's MEXC budgets counted on Redis by every worker process: weighted takes in a
sliding window, the wait until the oldest calls leave it, a 429's block of one group and a 418's of
every group, and nothing left behind once idle. On the local Redis in real time (short windows,
assertions with margins)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from adapters.redis import redis_client
from adapters.redis.rate_windows import RedisRateWindows
from tests.adapters.redis_support import delete_prefixed

pytestmark = pytest.mark.redis
TRADES, ORDER = "GET /api/v3/myTrades", "GET /api/v3/order"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    client = redis_client(redis_url)
    try:
        yield client, prefix
    finally:
        await delete_prefixed(client, prefix)
        await client.aclose()


async def test_weights_add_up_to_the_limit_across_workers_then_the_wait_is_until_enough_leaves(
    redis: tuple[Redis, str], redis_url: str,
) -> None:
    client, prefix = redis
    other = redis_client(redis_url)  # a second worker's client
    try:
        one, two = RedisRateWindows(client, prefix), RedisRateWindows(other, prefix)
        assert await one.take("mexc", TRADES, 10, 30, 0.5) == 0.0
        await asyncio.sleep(0.1)
        assert await two.take("mexc", TRADES, 10, 30, 0.5) == 0.0
        assert await one.take("mexc", TRADES, 10, 30, 0.5) == 0.0
        wait = await two.take("mexc", TRADES, 10, 30, 0.5)  # full: until the first leaves (~0.4 s)
        assert 0.25 < wait <= 0.5
        twenty = await two.take("mexc", TRADES, 20, 30, 0.5)  # needs two to leave: the second's (~0.5 s)
        assert twenty > wait
        assert await one.take("mexc", ORDER, 2, 30, 0.5) == 0.0  # another group has its own window
        assert await one.take("other-exchange", TRADES, 10, 30, 0.5) == 0.0  # another exchange too
        await asyncio.sleep(wait + 0.02)
        assert await two.take("mexc", TRADES, 10, 30, 0.5) == 0.0  # the refused calls were not counted
    finally:
        await other.aclose()


async def test_a_429_blocks_its_group_and_a_418_every_group(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    windows = RedisRateWindows(client, prefix)
    await windows.block("mexc", TRADES, 0.4)
    blocked = await windows.take("mexc", TRADES, 10, 500, 10.0)
    assert 0.2 < blocked <= 0.4
    assert await windows.take("mexc", ORDER, 2, 500, 10.0) == 0.0
    await windows.block("mexc", TRADES, 0.1)  # a shorter block never shortens one in force
    assert await windows.take("mexc", TRADES, 10, 500, 10.0) > 0.2
    await windows.block("mexc", None, 0.6)
    assert await windows.take("mexc", ORDER, 2, 500, 10.0) > 0.4
    assert await windows.take("other-exchange", ORDER, 2, 500, 10.0) == 0.0
    await asyncio.sleep(0.65)
    assert await windows.take("mexc", TRADES, 10, 500, 10.0) == 0.0


async def test_nothing_is_left_behind_once_the_window_is_over(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    windows = RedisRateWindows(client, prefix)
    assert await windows.take("mexc", TRADES, 10, 500, 0.2) == 0.0
    assert [k async for k in client.scan_iter(match=f"{prefix}:*")]
    await asyncio.sleep(0.35)
    assert not [k async for k in client.scan_iter(match=f"{prefix}:*")]
