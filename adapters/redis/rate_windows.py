"""An IP's MEXC request budgets on Redis, shared by every worker process (adapters.mexc.limits.SharedWindows).

MEXC counts each endpoint's weight per IP over 10 s; several workers behind one IP must count
together. Per exchange (`scope`) and endpoint group, a weighted sliding-window log:

- `<prefix>:mexc-ip:<scope>:<group>:log`, a sorted set of the calls taken, scored by Redis server
  time in microseconds (one clock for every worker), each member `<seq>:<weight>`;
- `...:total`, the weight the log holds; `...:seq`, the members' numbers;
- `...:block`, set for Retry-After after a 429; `<prefix>:mexc-ip:<scope>:ban`, after a 418 (every group).

A take drops what left the window, and counts the call when it fits under the limit and no block
is in force, in one script (atomic); otherwise it counts nothing and answers how long to wait:
the block's rest, or until enough of the oldest calls leave the window. Every key expires one
window after its last write, so an idle exchange leaves nothing behind.
"""

from __future__ import annotations

from redis.asyncio import Redis

from adapters.redis._keys import checked

# KEYS: log, total, seq, block, ban. ARGV: weight, limit, window µs.
# 0 when taken, else the µs to wait. Numbers go to Redis through string.format('%d'): no score is rounded.
_TAKE = """
local blocked = math.max(redis.call('PTTL', KEYS[4]), redis.call('PTTL', KEYS[5]))
if blocked > 0 then
  return blocked * 1000
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local weight = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local horizon = string.format('%d', now - window)
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', horizon)
if #gone > 0 then
  for _, member in ipairs(gone) do
    total = total - tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', horizon)
end
if total < 0 or redis.call('ZCARD', KEYS[1]) == 0 then
  total = 0
end
local ttl = string.format('%d', math.ceil(window / 1000))
if total + weight <= limit then
  local seq = redis.call('INCR', KEYS[3])
  redis.call('ZADD', KEYS[1], string.format('%d', now), seq .. ':' .. weight)
  redis.call('SET', KEYS[2], total + weight, 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
  return 0
end
redis.call('SET', KEYS[2], total, 'PX', ttl)
local need = total + weight - limit
local freed = 0
local held = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #held, 2 do
  freed = freed + tonumber(string.match(held[i], ':(%d+)$'))
  if freed >= need then
    return math.max(tonumber(held[i + 1]) + window - now, 1)
  end
end
return window
"""

# KEYS: the block. ARGV: ms. A block only ever grows longer.
_BLOCK = """
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""


class RedisRateWindows:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._prefix = f"{prefix}:mexc-ip:"
        self._take = self._redis.register_script(_TAKE)
        self._block = self._redis.register_script(_BLOCK)

    def _keys(self, scope: str, group: str) -> list[str]:
        base = f"{self._prefix}{scope}:{group}:"
        return [base + "log", base + "total", base + "seq", base + "block", f"{self._prefix}{scope}:ban"]

    async def take(self, scope: str, group: str, weight: int, limit: int, seconds: float) -> float:
        if seconds <= 0 or weight < 1:
            raise ValueError(f"a take needs a positive window and weight, got {seconds} and {weight}")
        wait_us = await self._take(keys=self._keys(scope, group), args=[weight, limit, round(seconds * 1_000_000)])
        return int(wait_us) / 1_000_000

    async def block(self, scope: str, group: str | None, seconds: float) -> None:
        if seconds <= 0:
            return
        key = f"{self._prefix}{scope}:ban" if group is None else self._keys(scope, group)[3]
        await self._block(keys=[key], args=[max(1, round(seconds * 1000))])
