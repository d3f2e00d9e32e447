"""Redis adapters: cache, locks, rate counters and live event fan-out for production.

Each has an in-process twin in adapters/memory.py with the same behaviour. They share one
`redis.asyncio.Redis` client, made by `redis_client(url)` (bytes replies), which its owner
closes; every key and channel starts with the deployment's prefix, so deployments can
share a Redis.
"""

from __future__ import annotations

from redis.asyncio import Redis

from adapters.redis.agent_status import RedisAgentStatusBoard
from adapters.redis.cache import RedisCache
from adapters.redis.counters import RedisRequestCounter
from adapters.redis.fanout import RedisEventFanout
from adapters.redis.locks import RedisLockService

__all__ = ["RedisAgentStatusBoard", "RedisCache", "RedisEventFanout", "RedisLockService", "RedisRequestCounter", "redis_client"]


def redis_client(url: str) -> Redis:
    """The one way to open the client these adapters take (they need bytes, not decoded str)."""
    return Redis.from_url(url, decode_responses=False)
