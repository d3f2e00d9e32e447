"""Live event fan-out on Redis pub/sub, one channel per user: `<prefix>:events:<user_id>`.

PUBLISH returns as soon as Redis has queued the message for each subscriber, so a slow
reader never holds up the publisher; Redis drops a subscriber whose backlog passes its
pub/sub output buffer limit (client-output-buffer-limit, 32 MB by default). Each
subscription holds its own connection from the client's pool.

Pub/sub delivers at most once: a subscriber whose connection broke may have missed events,
even though redis-py reconnects and subscribes again by itself. So a reconnect, like a
dropped connection, ends the subscription with SubscriptionLost rather than carrying on
across a silent gap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection
from redis.exceptions import RedisError

from adapters.redis._keys import checked
from application.errors import SubscriptionLost

# How long one read waits before the subscription looks at its connection again: bounds
# how late a reconnect (a possible gap) is reported when no event comes along.
_READ_SLICE = 1.0


class RedisEventFanout:
    def __init__(self, client: Redis, prefix: str) -> None:
        self._redis, prefix = checked(client, prefix)
        self._channels = f"{prefix}:events:"

    async def publish(self, user_id: str, recorded_event_json: bytes) -> None:
        await self._redis.publish(self._channels + user_id, recorded_event_json)

    @asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        channel = self._channels + user_id
        pubsub = self._redis.pubsub()
        subscription = _RedisSubscription(pubsub, user_id)
        try:
            await subscription.start(channel)
            yield subscription
        finally:
            await subscription.close()


class _RedisSubscription:
    def __init__(self, pubsub: PubSub, user_id: str) -> None:
        self._pubsub = pubsub
        self._user_id = user_id
        self._connection: Connection | None = None
        self._gap = False  # events may have been missed: stays so
        self._closed = False

    async def start(self, channel: str) -> None:
        """Subscribe and wait for Redis to confirm: from then on, every publish reaches us."""
        try:
            await self._pubsub.subscribe(channel)
            while True:
                message = await self._pubsub.get_message(timeout=None)
                if message is not None and message["type"] == "subscribe":
                    break
        except RedisError as exc:
            raise SubscriptionLost(f"could not subscribe to the events of {self._user_id}: {exc}") from exc
        self._connection = self._pubsub.connection
        assert self._connection is not None
        self._connection.register_connect_callback(self._on_reconnect)

    def _on_reconnect(self, _connection: Connection) -> None:
        self._gap = True

    async def close(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.deregister_connect_callback(self._on_reconnect)
            self._connection = None
        await self._pubsub.aclose()

    def __aiter__(self) -> _RedisSubscription:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._gap:
                raise SubscriptionLost(f"the event subscription of {self._user_id} was cut off: events may be missing")
            try:
                message = await self._pubsub.get_message(timeout=_READ_SLICE)
            except RedisError as exc:
                self._gap = True
                raise SubscriptionLost(f"the event subscription of {self._user_id} broke: {exc}") from exc
            if message is not None and message["type"] == "message" and not self._gap:
                return message["data"]
