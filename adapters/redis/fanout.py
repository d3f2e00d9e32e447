"""Live event fan-out on Redis pub/sub, one channel per user: `<prefix>:events:<user_id>`.

PUBLISH returns as soon as Redis has queued the message for each subscriber, so a slow
reader never holds up the publisher.

A process listens on ONE pub/sub connection, subscribed to the pattern `<prefix>:events:*`
while it has any subscriber, and hands each event to its user's subscribers in process (an
InMemoryEventFanout: a bounded queue each, a reader too far behind is dropped). A connection
per subscriber would let one user's open streams use up the client's connection pool, and
every other request with it.

Pub/sub delivers at most once: while the connection was broken events may have been missed,
even though redis-py reconnects and subscribes again by itself. So a reconnect, like a
dropped connection, ends every subscription with SubscriptionLost rather than carrying on
across a silent gap; the next subscriber opens a fresh connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import RedisError

from adapters.memory import MAX_PENDING_EVENTS, InMemoryEventFanout
from adapters.redis._keys import checked
from application.errors import SubscriptionLost

# How long one read waits before the listener looks at its connection again: bounds how
# late a reconnect (a possible gap) is reported when no event comes along.
_READ_SLICE = 1.0
# Subscribing waits this long for Redis (a free pooled connection included), then gives up.
_SUBSCRIBE_TIMEOUT = 10.0


class RedisEventFanout:
    def __init__(self, client: Redis, prefix: str, max_pending: int = MAX_PENDING_EVENTS) -> None:
        self._redis, prefix = checked(client, prefix)
        self._channels = f"{prefix}:events:"
        self._local = InMemoryEventFanout(max_pending)
        self._listener: _Listener | None = None
        self._subscribers = 0

    async def publish(self, user_id: str, recorded_event_json: bytes) -> None:
        await self._redis.publish(self._channels + user_id, recorded_event_json)

    @asynccontextmanager
    async def subscribe(self, user_id: str) -> AsyncIterator[AsyncIterator[bytes]]:
        self._subscribers += 1
        try:
            # Registered before the listener confirms: a listener that fails meanwhile drops it too.
            async with self._local.subscribe(user_id) as events:
                if self._listener is None:
                    self._listener = _Listener(self._redis, self._channels, self._local.publish, self._ended)
                await self._listener.live()
                yield events
        finally:
            self._subscribers -= 1
            if self._subscribers == 0 and self._listener is not None:
                listener, self._listener = self._listener, None
                await listener.stop()

    def _ended(self, listener: _Listener, why: str) -> None:
        if self._listener is listener:
            self._listener = None
            self._local.drop_everyone(why)


class _Listener:
    """The process's one pattern subscription, from subscribing until it breaks or is stopped."""

    def __init__(
        self,
        client: Redis,
        channels: str,
        deliver: Callable[[str, bytes], Awaitable[None]],
        ended: Callable[[_Listener, str], None],
    ) -> None:
        self._pubsub = client.pubsub()
        self._channels = channels.encode()
        self._deliver = deliver
        self._ended = ended
        self._confirmed = asyncio.Event()
        self._failure: str | None = None
        self._gap = False  # the connection was made again: events may have been missed
        self._task = asyncio.create_task(self._run(), name="redis-event-fanout")

    async def live(self) -> None:
        """Returns once Redis confirmed the subscription; SubscriptionLost if it could not."""
        await self._confirmed.wait()
        if self._failure is not None:
            raise SubscriptionLost(self._failure)

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.wait({self._task})

    def _on_reconnect(self, _connection: Connection) -> None:
        self._gap = True

    def _fail(self, why: str) -> None:
        self._failure = why
        self._confirmed.set()
        self._ended(self, why)

    async def _run(self) -> None:
        connection: Connection | None = None
        try:
            try:
                async with asyncio.timeout(_SUBSCRIBE_TIMEOUT):
                    await self._pubsub.psubscribe(_glob_escaped(self._channels) + b"*")
                    while True:
                        message = await self._pubsub.get_message(timeout=None)
                        if message is not None and message["type"] == "psubscribe":
                            break
            except (RedisError, OSError, TimeoutError) as exc:
                self._fail(f"could not subscribe to the live events: {exc or type(exc).__name__}")
                return
            connection = self._pubsub.connection
            if connection is None:  # not reached: the subscription above opened it
                raise RuntimeError("the live events' pub/sub has no connection")
            connection.register_connect_callback(self._on_reconnect)
            self._confirmed.set()
            while not self._gap:
                try:
                    message = await self._pubsub.get_message(timeout=_READ_SLICE)
                except (RedisError, OSError) as exc:
                    self._fail(f"broke: {exc}")
                    return
                if message is None or message["type"] != "pmessage" or self._gap:
                    continue
                channel = message["channel"]
                try:
                    user_id = channel[len(self._channels):].decode()
                except UnicodeDecodeError:
                    continue  # not a channel we publish on
                await self._deliver(user_id, message["data"])
            self._fail("was cut off: events may be missing")
        finally:
            if connection is not None:
                connection.deregister_connect_callback(self._on_reconnect)
            await self._pubsub.aclose()


def _glob_escaped(text: bytes) -> bytes:
    """`text` matched literally in a Redis glob pattern."""
    return b"".join(b"\\" + bytes([c]) if c in b"\\*?[]^" else bytes([c]) for c in text)
