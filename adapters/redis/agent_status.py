"""Agent heartbeats on Redis: one hash per deployment, one field per (worker, agent).

A worker that dies stops beating: its entries stay, with an old `last_beat_at`, so readers
judge staleness themselves; entries older than `forget_after` are dropped on read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from redis.asyncio import Redis

from adapters.redis._keys import as_bytes, checked
from application.ports import AgentStatus


class _Stored(msgspec.Struct, frozen=True):
    name: str
    healthy: bool
    last_beat_at: datetime
    restarts: int
    detail: str
    worker_id: str
    stale_after: datetime | None = None


class RedisAgentStatusBoard:
    """Statuses live in the hash `<prefix>:agents`."""

    def __init__(self, client: Redis, prefix: str, forget_after: timedelta = timedelta(days=1)) -> None:
        self._redis, prefix = checked(client, prefix)
        self._key = f"{prefix}:agents"
        self._forget_after = forget_after

    async def beat(self, status: AgentStatus) -> None:
        stored = _Stored(status.name, status.healthy, status.last_beat_at, status.restarts, status.detail,
                         status.worker_id, status.stale_after)
        await self._redis.hset(self._key, f"{status.worker_id}/{status.name}", msgspec.json.encode(stored))

    async def statuses(self) -> list[AgentStatus]:
        raw = await self._redis.hgetall(self._key)
        found: list[AgentStatus] = []
        stale: list[bytes] = []
        newest = None
        decoded = []
        for field, value in raw.items():
            try:
                s = msgspec.json.decode(value, type=_Stored)
            except msgspec.DecodeError:
                stale.append(as_bytes(field))  # written by something else: not ours to trust
                continue
            decoded.append((field, s))
            newest = s.last_beat_at if newest is None else max(newest, s.last_beat_at)
        for field, s in decoded:
            if newest is not None and newest - s.last_beat_at > self._forget_after:
                stale.append(as_bytes(field))
                continue
            found.append(AgentStatus(s.name, s.healthy, s.last_beat_at, s.restarts, s.detail, s.worker_id,
                                     s.stale_after))
        if stale:
            await self._redis.hdel(self._key, *stale)
        return sorted(found, key=lambda s: (s.name, s.worker_id))
