"""Leases on Redis, with fencing tokens.

The lease is `<prefix>:lock:<key>` holding its token, with a millisecond expiry (Redis's
clock decides when a lease lapses). The token comes from `<prefix>:fence:<key>`, a counter
that is never expired, so every new holder of the key gets a larger token than any before
(one small integer stays per key ever leased). Taking, releasing and renewing are Lua
scripts, each atomic: the counter is only bumped for a holder that actually gets the key
(a separate INCR then SET NX could hand a newer holder the older token), and release and
renew act only while the key still holds the caller's token and nonce.

Each counter has an epoch, `<prefix>:fence-epoch:<key>` = `<random id>:<Redis TIME in µs>`,
written by the take that starts the counter (or finds it without one, as after an upgrade or an
eviction) and never expired either: a counter that starts again gets a new epoch. The lease
carries it, so a holder can tell work fenced by an earlier counter (see `Lease.epoch`).

Redis may lose its data (no persistence, a failover, a flush): the counter then starts again,
and a new holder could get the token an earlier, still living holder has. The lock holds
`<token>:<nonce>` (a random nonce per holder), so that earlier holder's renewal is refused,
and the take says when it started the counter (`Lease.first`): the caller then knows an
earlier holder of the key may still believe in its lease for up to one ttl. Later holders learn
it from the epoch: another than the one their work was recorded under.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from adapters.redis._keys import as_bytes, checked, milliseconds
from application.ports import Lease

log = logging.getLogger(__name__)

# KEYS: lock, fence, fence epoch. ARGV: ttl ms, nonce, a new epoch id. {token, 1 when this take
# started the fence counter, epoch "<id>:<started, µs>", Redis TIME now in µs}, or nil when the
# key is held. Times as decimal strings of microseconds (no Lua number rounding).
_TAKE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local now = redis.call('TIME')
local micros = now[1] .. string.sub('00000' .. now[2], -6)
local first = 1 - redis.call('EXISTS', KEYS[2])
if first == 1 or redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], ARGV[3] .. ':' .. micros)
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[2], 'PX', ARGV[1])
return {token, first, redis.call('GET', KEYS[3]), micros}
"""

# KEYS: lock. ARGV: token:nonce. 1 when released, 0 when the key is not (or no longer) ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lock. ARGV: token:nonce, ttl ms. 1 when renewed, 0 when the key is not (or no longer) ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisLockService:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._locks = f"{prefix}:lock:"
        self._fences = f"{prefix}:fence:"
        self._epochs = f"{prefix}:fence-epoch:"
        self._take = self._redis.register_script(_TAKE)
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)

    @asynccontextmanager
    async def lease(self, key: str, ttl: timedelta) -> AsyncIterator[Lease | None]:
        _check_ttl(ttl)
        nonce = secrets.token_hex(8)
        taken = await self._take(
            keys=[self._locks + key, self._fences + key, self._epochs + key],
            args=[milliseconds(ttl), nonce, secrets.token_hex(8)],
        )
        if taken is None:
            yield None
            return
        answered_at = datetime.now(UTC)
        token, first, epoch_value, redis_now = taken
        epoch, _, started = as_bytes(epoch_value).decode().partition(":")
        # The counter's age by Redis's clock, from our clock's reading of the reply: our clock's
        # offset from Redis's does not count, and the reply's time in flight only makes it later.
        age = timedelta(microseconds=int(as_bytes(redis_now)) - int(started))
        lease = Lease(key, int(token), first=bool(int(first)), nonce=nonce, epoch=epoch,
                      epoch_started_at=answered_at - age)
        try:
            yield lease
        finally:
            try:
                await self._release(keys=[self._locks + key], args=[_value(lease)])
            except RedisError as exc:
                # The lease lapses by itself at its ttl; do not hide what the holder raised.
                log.warning("could not release lease %s (token %s), it lapses at its ttl: %s", key, lease.token, exc)

    async def renew(self, lease: Lease, ttl: timedelta) -> bool:
        _check_ttl(ttl)
        return bool(await self._renew(keys=[self._locks + lease.key], args=[_value(lease), milliseconds(ttl)]))


def _value(lease: Lease) -> str:
    return f"{lease.token}:{lease.nonce}"


def _check_ttl(ttl: timedelta) -> None:
    if ttl <= timedelta(0):
        raise ValueError(f"a lease needs a positive ttl, got {ttl}")
