"""Both twins of the coordination adapters, built for one test: in memory and on the local Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from adapters.clock import ManualClock
from adapters.memory import InMemoryCache, InMemoryEventFanout, InMemoryLockService, InMemoryRequestCounter
from adapters.redis import RedisCache, RedisEventFanout, RedisLockService, RedisRequestCounter, redis_client
from application.ports import Cache, EventFanout, LockService, RequestCounter

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@dataclass
class Twins:
    name: str
    cache: Cache
    locks: LockService
    # A second worker's lock service over the same storage (its own client on Redis).
    other_locks: LockService
    counter: RequestCounter
    fanout: EventFanout
    # Let time pass: the manual clock jumps, Redis's real clock is waited for.
    elapse: Callable[[timedelta], Awaitable[None]]
    # True in memory: time is exact there, so boundaries can be asserted to the microsecond.
    exact: bool
    # Added to a wait that must end past a moment Redis measures (its clock, our sleep).
    slack: timedelta
    # What a Redis restart without persistence, a failover or a flush does: every lease and fence
    # counter is forgotten (in memory, by the lock service; on Redis, every key of the prefix).
    lose_data: Callable[[], Awaitable[None]]


def memory_twins() -> Twins:
    clock = ManualClock(T0)
    locks = InMemoryLockService(clock)

    async def elapse(delta: timedelta) -> None:
        clock.advance(delta)

    async def lose_data() -> None:
        locks.lose_data()

    return Twins(
        "memory", InMemoryCache(clock), locks, locks, InMemoryRequestCounter(clock), InMemoryEventFanout(),
        elapse, exact=True, slack=timedelta(0), lose_data=lose_data,
    )


@asynccontextmanager
async def redis_twins(url: str) -> AsyncIterator[Twins]:
    """Adapters under a fresh key prefix; its keys are deleted afterwards."""
    prefix = f"sniper-test-{secrets.token_hex(6)}"
    client, other = redis_client(url), redis_client(url)

    async def elapse(delta: timedelta) -> None:
        await asyncio.sleep(delta.total_seconds())

    async def lose_data() -> None:
        await delete_prefixed(client, prefix)

    try:
        yield Twins(
            "redis", RedisCache(client, prefix), RedisLockService(client, prefix), RedisLockService(other, prefix),
            RedisRequestCounter(client, prefix), RedisEventFanout(client, prefix),
            elapse, exact=False, slack=timedelta(milliseconds=30), lose_data=lose_data,
        )
    finally:
        await delete_prefixed(client, prefix)
        await other.aclose()
        await client.aclose()


async def delete_prefixed(client: Redis, prefix: str) -> None:
    await _delete_matching(client, f"{prefix}:*")


async def delete_matching(url: str, pattern: str) -> None:
    """Deletes the keys that match `pattern` on the Redis at `url` (a test's own: the Redis is shared)."""
    client = redis_client(url)
    try:
        await _delete_matching(client, pattern)
    finally:
        await client.aclose()


async def _delete_matching(client: Redis, pattern: str) -> None:
    keys = [key async for key in client.scan_iter(match=pattern, count=500)]
    if keys:
        await client.delete(*keys)
