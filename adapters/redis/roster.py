"""LaunchRoster on Redis: who sends into one launch, across every worker process.

`<prefix>:launch:<launch>` is a set of the members (snipe target ids); each join adds its member,
pushes the set's expiry to `ttl` from now and answers the set's size, in one script (atomic).
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from adapters.redis._keys import checked, milliseconds

# KEYS: the set. ARGV: member, ttl ms. The number of members.
_JOIN = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('SCARD', KEYS[1])
"""


class RedisLaunchRoster:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._keys = f"{prefix}:launch:"
        self._join = self._redis.register_script(_JOIN)

    async def join(self, launch: str, member: str, ttl: timedelta) -> int:
        if ttl <= timedelta(0):
            raise ValueError(f"a launch roster needs a positive ttl, got {ttl}")
        return int(await self._join(keys=[self._keys + launch], args=[member, milliseconds(ttl)]))
