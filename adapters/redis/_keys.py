"""What the Redis adapters share: the client check, key prefixes and millisecond TTLs."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

_MS = timedelta(milliseconds=1)


def checked(client: Redis, prefix: str) -> tuple[Redis, str]:
    """The client and prefix, refused early when they cannot work."""
    if client.get_encoder().decode_responses:
        raise ValueError("the Redis adapters need a client with decode_responses=False (see redis_client)")
    if not prefix:
        raise ValueError("a Redis key prefix is needed (one per deployment)")
    return client, prefix


def as_bytes(value: bytes | str) -> bytes:
    """A reply of a client checked() accepted (decode_responses=False) is bytes; redis-py types it bytes | str."""
    if isinstance(value, str):
        raise TypeError("the Redis client decodes replies to str; the adapters need decode_responses=False")
    return value


def milliseconds(ttl: timedelta) -> int:
    """Whole milliseconds, rounded up: a ttl never ends sooner than asked."""
    return -(-ttl // _MS)
