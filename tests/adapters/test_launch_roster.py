"""LaunchRoster: the traders sending into one launch, counted once each, across worker processes
(Redis) or in one (memory); a roster is forgotten its ttl after the last join."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import ManualClock
from adapters.memory import InMemoryLaunchRoster
from adapters.redis import redis_client
from adapters.redis.roster import RedisLaunchRoster
from tests.adapters.redis_support import delete_prefixed


async def test_fifty_executors_in_two_processes_count_fifty(redis_url: str) -> None:
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    one, two = redis_client(redis_url), redis_client(redis_url)  # two workers' clients
    try:
        rosters = [RedisLaunchRoster(one, prefix), RedisLaunchRoster(two, prefix)]
        counts = await asyncio.gather(*(rosters[n % 2].join("NEWUSDT:1", f"t-{n}", timedelta(seconds=30))
                                        for n in range(50)))
        assert sorted(counts) == list(range(1, 51))
        assert await rosters[0].join("NEWUSDT:1", "t-7", timedelta(seconds=30)) == 50  # joining again: no change
        assert await rosters[1].join("OTHERUSDT:1", "t-7", timedelta(seconds=30)) == 1  # another launch
        ttl = await one.pttl(f"{prefix}:launch:NEWUSDT:1")
        assert 0 < ttl <= 30_000
    finally:
        await delete_prefixed(one, prefix)
        await one.aclose()
        await two.aclose()


async def test_a_ttl_must_be_positive(redis_url: str) -> None:
    client = redis_client(redis_url)
    try:
        with pytest.raises(ValueError):
            await RedisLaunchRoster(client, "sniper-test-roster").join("X:1", "a", timedelta(0))
    finally:
        await client.aclose()


async def test_in_memory_the_same() -> None:
    roster = InMemoryLaunchRoster(ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    assert [await roster.join("X:1", f"t-{n}", timedelta(seconds=5)) for n in range(3)] == [1, 2, 3]
    assert await roster.join("X:1", "t-0", timedelta(seconds=5)) == 3
    with pytest.raises(ValueError):
        await roster.join("X:1", "a", -timedelta(seconds=1))
