"""Redis adapters: cache, locks, rate counters and live event fan-out for production.

Each has an in-process twin in adapters/memory.py with the same behaviour. They share one
`redis.asyncio.Redis` client, made by `redis_client(url)` (bytes replies), which its owner
closes; every key and channel starts with the deployment's prefix, so deployments can
share a Redis. `redis_client` is the only way the program opens Redis (the HTTP app, the
worker, `sniper agents` and the job queue all go through it), so `CONNECTION_POLICY` below
is how every connection of the program behaves when Redis goes away.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters.redis.agent_status import RedisAgentStatusBoard
from adapters.redis.cache import RedisCache
from adapters.redis.counters import RedisRequestCounter
from adapters.redis.fanout import RedisEventFanout
from adapters.redis.locks import RedisLockService

__all__ = [
    "CONNECTION_POLICY", "RedisAgentStatusBoard", "RedisCache", "RedisEventFanout", "RedisLockService",
    "RedisRequestCounter", "redis_client",
]


# How every Redis connection of the program behaves when it fails: chosen here, never left to
# redis-py, whose defaults moved under us (8.0: `Redis()` retries ten times with backoff, and
# connections time out after 5 s where 5.x waited forever).
#
# - No command is ever sent twice (no retries, for any error). redis-py retries per connection,
#   not per command, and it replays a command whose reply was lost, that is one that may
#   already have run: it cannot tell a GET from a lease take (replayed after it went through,
#   the take finds its own lease and reports it held by another, so nobody snipes), a
#   rate-limit hit (counted twice) or a job dequeue. The first failure reaches the caller as
#   a RedisError, and the caller knows whether its command may be repeated: a lease that could
#   not be taken is not held, one that could not be released lapses at its ttl, a failed renew
#   is asked again by the snipe's next check, a heartbeat beats again, SAQ polls again.
# - A pooled connection that Redis closed while it sat idle (a restart, CLIENT KILL) is replaced
#   before the next command is sent (redis-py's pool checks each connection it hands out); that
#   is not a retry, nothing had left.
# - Every call ends: a Redis that stops answering (a partition, a paused host) fails a call
#   after `socket_timeout` instead of holding a snipe's lease renewal or a request forever.
#   5 s is well above the longest blocking read we issue (SAQ's dequeue waits its idle_wait,
#   1 s); blocking pub/sub reads ignore it (redis-py >= 8). Connecting is bounded separately.
# - TCP keepalive (30 s idle, then 3 probes 5 s apart, where the platform lets us set them)
#   ends a connection whose peer vanished without closing it (a host gone, a NAT entry
#   dropped): the pool then replaces it, and a pub/sub listener waiting on it learns it broke.
# - No health-check PING before commands (interval 0): it costs a round trip, and without
#   retries a failed PING only fails the command it preceded; keepalive covers the same case.
CONNECTION_POLICY: Final[Mapping[str, Any]] = MappingProxyType({
    "retry": Retry(NoBackoff(), 0),
    "socket_timeout": 5.0,
    "socket_connect_timeout": 2.0,
    "health_check_interval": 0,
})
# Only for TCP (redis://, rediss://): redis-py refuses these options on a unix:// socket.
_TCP_KEEPALIVE: Final[Mapping[str, Any]] = MappingProxyType({
    "socket_keepalive": True,
    "socket_keepalive_options": {
        getattr(socket, name): value
        for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3))
        if hasattr(socket, name)
    },
})


def redis_client(url: str, *, name: str | None = None, max_connections: int = 100, pool_timeout: float = 2.0) -> Redis:
    """The one way to open the client these adapters take (they need bytes, not decoded str),
    with CONNECTION_POLICY. `name` names its connections in CLIENT LIST.

    It opens at most `max_connections` (REDIS_MAX_CONNECTIONS); when all are busy a command
    waits up to `pool_timeout` seconds for one, then fails alone with a ConnectionError
    (redis-py's default pool refuses at once, which under a burst fails everyone together)."""
    tcp = {} if url.startswith("unix://") else _TCP_KEEPALIVE
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout,
        decode_responses=False, client_name=name, **CONNECTION_POLICY, **tcp,
    )
    return Redis.from_pool(pool)
