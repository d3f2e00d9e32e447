"""Cache on Redis: plain string keys with a millisecond expiry."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from adapters.redis._keys import as_bytes, checked, milliseconds


class RedisCache:
    """Keys live at `<prefix>:cache:<key>`."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._prefix = f"{prefix}:cache:"

    async def get(self, key: str) -> bytes | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else as_bytes(value)

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None:
        if ttl is None:
            await self._redis.set(self._prefix + key, value)  # also drops an earlier ttl
        elif ttl <= timedelta(0):
            # Redis refuses PX 0; a value that expires at once is a value that is gone.
            await self._redis.delete(self._prefix + key)
        else:
            await self._redis.set(self._prefix + key, value, px=milliseconds(ttl))

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)
