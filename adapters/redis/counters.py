"""Request limits on Redis: a sliding-window log per key.

Why a log and not GCRA or a fixed window: the answer is exact (no burst of twice the limit
at a window edge, as fixed windows allow), `count` is a real number of hits, and a refused
caller is told exactly when the oldest counted hit leaves the window. Its cost, one sorted
set entry per allowed hit in the window, is small at per-user API limits.

`<prefix>:rate:log:<key>` is a sorted set of the allowed hits, scored by Redis server time
in microseconds (one clock for every worker); `<prefix>:rate:seq:<key>` numbers them so two
hits in the same microsecond stay two. Both expire one window after the last allowed hit.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from adapters.redis._keys import checked
from application.ports import CounterResult

_US = timedelta(microseconds=1)

# KEYS: log, seq. ARGV: window µs, limit. {allowed 1|0, count, retry after µs}.
# Numbers go to Redis through string.format('%d') so that no score is rounded.
_HIT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], string.format('%d', now), seq)
  local ttl = string.format('%d', math.ceil(window / 1000))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {1, count + 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, count, tonumber(oldest[2]) + window - now}
"""


class RedisRequestCounter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._logs = f"{prefix}:rate:log:"
        self._seqs = f"{prefix}:rate:seq:"
        self._hit = self._redis.register_script(_HIT)

    async def hit(self, key: str, window: timedelta, limit: int) -> CounterResult:
        if window <= timedelta(0) or limit < 1:
            raise ValueError(f"a request limit needs a positive window and limit, got {window} and {limit}")
        allowed, count, retry_us = await self._hit(
            keys=[self._logs + key, self._seqs + key], args=[-(-window // _US), limit]
        )
        return CounterResult(bool(allowed), int(count), int(retry_us) * _US)
