"""Delivery rules on a virtual clock (ManualClock: a sleep moves time at once): retries with
backoff, giving up into the undelivered list, permanent refusals, the channel's retry_after, order
per destination, the per-chat pace; and the lease that keeps one deliverer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from adapters.clock import ManualClock
from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine
from adapters.notifications import SqlNotificationOutbox
from application.notifications import (
    DELIVERED,
    PENDING,
    UNDELIVERED,
    ChangeNotificationSettings,
    ChannelChange,
    DeliveryFailed,
    DeliveryPolicy,
    Destination,
    LinkTelegramChat,
    NotificationDelivery,
    OutboxEntry,
    Queued,
    UnlinkTelegramChat,
)

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
USER = "carol"


class ScriptedSender:
    """Fails as scripted (one DeliveryFailed or None per call, then succeeds); notes each send."""

    def __init__(self, clock: ManualClock, script: list[DeliveryFailed | None] | None = None) -> None:
        self.clock, self.script, self.sent = clock, list(script or []), []

    async def send(self, destination: Destination, entry: OutboxEntry) -> None:
        self.sent.append((self.clock.now(), destination.address, entry.title))
        failure = self.script.pop(0) if self.script else None
        if failure is not None:
            raise failure


@pytest.fixture
async def store(tmp_path):  # noqa: ANN001, ANN201
    engine = await open_engine(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    await ensure_schema(engine, initialise_empty=True)
    store = SqlEventStore(engine)
    change = ChangeNotificationSettings(store, ManualClock(T0), None)
    await change(USER, {}, [ChannelChange("telegram", True, "77")], None)
    yield store
    await engine.dispose()


def queued(n: int, channel: str = "telegram") -> list[Queued]:
    return [Queued(f"event:{i}", i, USER, channel, "exit", f"message {i}", "body", False) for i in range(1, n + 1)]


async def setup(store: SqlEventStore, sender: ScriptedSender, clock: ManualClock, n: int = 1,
                **policy: object) -> tuple[SqlNotificationOutbox, NotificationDelivery]:
    outbox = SqlNotificationOutbox(store.engine)
    await outbox.queue(queued(n), clock.now())
    chosen = {"first_retry": timedelta(seconds=10), "per_destination": 0.0, "per_channel": {}, **policy}
    delivery = NotificationDelivery(outbox, store, {"telegram": sender}, None, clock,
                                    DeliveryPolicy(**chosen))  # type: ignore[arg-type]
    return outbox, delivery


async def round_(delivery: NotificationDelivery) -> None:
    await delivery.dispatch()
    await delivery.idle()


async def statuses(outbox: SqlNotificationOutbox) -> list[tuple[str, int]]:
    return [(e.status, e.attempts) for e in reversed(await outbox.for_user(USER))]


async def test_a_failed_send_is_retried_with_backoff_until_it_goes_out(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock, [DeliveryFailed("telegram: HTTP 502"), DeliveryFailed("telegram: ReadTimeout")])
    outbox, delivery = await setup(store, sender, clock)
    await round_(delivery)
    [entry] = await outbox.for_user(USER)
    assert (entry.status, entry.attempts, entry.next_attempt_at, entry.last_error) == (
        PENDING, 1, T0 + timedelta(seconds=10), "telegram: HTTP 502")
    await round_(delivery)  # not due yet: nothing sent
    assert len(sender.sent) == 1
    clock.set(T0 + timedelta(seconds=10))
    await round_(delivery)
    assert (await outbox.for_user(USER))[0].next_attempt_at == clock.now() + timedelta(seconds=20)  # doubled
    clock.set(clock.now() + timedelta(seconds=20))
    await round_(delivery)
    assert await statuses(outbox) == [(DELIVERED, 3)]
    assert [at for at, _, _ in sender.sent] == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)]


async def test_after_its_attempts_a_message_is_undelivered_with_the_reason(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock, [DeliveryFailed("telegram: HTTP 500")] * 3)
    outbox, delivery = await setup(store, sender, clock, attempts=3)
    for _ in range(3):
        await round_(delivery)
        clock.set(clock.now() + timedelta(minutes=10))
    assert await statuses(outbox) == [(UNDELIVERED, 3)]
    [lost] = await outbox.for_user(USER, UNDELIVERED)
    assert lost.last_error == "telegram: HTTP 500" and lost.title == "message 1"
    await round_(delivery)
    assert len(sender.sent) == 3  # given up: never sent again


async def test_a_permanent_refusal_is_not_retried_and_retry_after_is_honoured(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock, [DeliveryFailed("telegram: HTTP 403", permanent=True),
                                    DeliveryFailed("telegram: HTTP 429", retry_after=45)])
    outbox, delivery = await setup(store, sender, clock, n=2)
    await round_(delivery)
    await round_(delivery)
    first, second = reversed(await outbox.for_user(USER))
    assert (first.status, first.attempts, first.last_error) == (UNDELIVERED, 1, "telegram: HTTP 403")
    assert (second.status, second.next_attempt_at) == (PENDING, T0 + timedelta(seconds=45))  # not 10 s


async def test_a_destination_keeps_its_order_behind_a_retry(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock, [DeliveryFailed("telegram: HTTP 502")])
    outbox, delivery = await setup(store, sender, clock, n=3)
    await round_(delivery)
    await round_(delivery)
    assert [title for _, _, title in sender.sent] == ["message 1"]  # 2 and 3 wait behind 1's retry
    clock.set(T0 + timedelta(seconds=10))
    await round_(delivery)
    assert [title for _, _, title in sender.sent] == ["message 1", "message 1", "message 2", "message 3"]
    assert await statuses(outbox) == [(DELIVERED, 2), (DELIVERED, 1), (DELIVERED, 1)]


async def test_one_chat_gets_at_most_its_rate(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock)
    outbox, delivery = await setup(store, sender, clock, n=3, per_destination=1.0)
    await round_(delivery)
    assert [at for at, _, _ in sender.sent] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]


async def test_a_channel_turned_off_since_leaves_its_messages_undelivered(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = ScriptedSender(clock)
    outbox, delivery = await setup(store, sender, clock, n=1)
    assert await UnlinkTelegramChat(store, clock)(USER, "76") is False  # another chat: nothing changes
    assert await UnlinkTelegramChat(store, clock)(USER, "77") is True
    await round_(delivery)
    assert sender.sent == []
    [lost] = await outbox.for_user(USER, UNDELIVERED)
    assert lost.last_error == "telegram is no longer among your channels"
    # Linking a chat points the channel there and turns it on.
    prefs = await LinkTelegramChat(store, clock)(USER, "-100200")
    assert [(c.kind, c.enabled, c.address) for c in prefs.channels] == [("telegram", True, "-100200")]


async def test_one_deliverer_holds_the_lease_until_it_lapses(store: SqlEventStore) -> None:
    outbox, other = SqlNotificationOutbox(store.engine), SqlNotificationOutbox(store.engine)
    ttl = timedelta(seconds=30)
    assert await outbox.hold_lease("a", T0, ttl)
    assert not await other.hold_lease("b", T0 + timedelta(seconds=5), ttl)
    assert await outbox.hold_lease("a", T0 + timedelta(seconds=20), ttl)  # renewed
    assert not await other.hold_lease("b", T0 + timedelta(seconds=40), ttl)
    assert await other.hold_lease("b", T0 + timedelta(seconds=51), ttl)  # lapsed: taken over
    await other.release_lease("b")
    assert await SqlNotificationOutbox(store.engine).hold_lease("c", T0 + timedelta(seconds=52), ttl)


class GatedSender(ScriptedSender):
    """Holds each send until the test opens the gate."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.gate = asyncio.Event()

    async def send(self, destination: Destination, entry: OutboxEntry) -> None:
        await self.gate.wait()
        await super().send(destination, entry)


async def test_rows_read_while_their_destination_drains_are_not_sent_twice(store: SqlEventStore) -> None:
    clock = ManualClock(T0)
    sender = GatedSender(clock)
    outbox, delivery = await setup(store, sender, clock, n=1)
    await delivery.dispatch()  # a drain holds message 1, in flight

    read = outbox.pending

    async def pending_while_the_drain_finishes(limit: int = 500) -> list[OutboxEntry]:
        rows = await read(limit)  # message 1 still pending as read here...
        sender.gate.set()
        await delivery.idle()  # ...then delivered and its drain gone before this dispatch looks
        return rows

    outbox.pending = pending_while_the_drain_finishes  # type: ignore[method-assign]
    await delivery.dispatch()
    await delivery.idle()
    assert [title for _, _, title in sender.sent] == ["message 1"]
    assert await statuses(outbox) == [(DELIVERED, 1)]


async def test_never_into_a_chat_linked_to_another_user(store: SqlEventStore) -> None:
    """Carol's Telegram channel points at chat 77 (set by hand); dave then links chat 77 with the
    bot. Carol's messages are not sent into dave's chat, and she cannot point it there again."""
    from application.telegram import IssueTelegramLinkCode, RedeemTelegramLinkCode
    from domain.errors import InvalidValue

    clock = ManualClock(T0)
    code = await IssueTelegramLinkCode(store, clock)("dave")
    await RedeemTelegramLinkCode(store, clock)(77, code.code)
    sender = ScriptedSender(clock)
    outbox, delivery = await setup(store, sender, clock)
    await round_(delivery)
    assert sender.sent == []
    [lost] = await outbox.for_user(USER, UNDELIVERED)
    assert lost.last_error == "telegram: that chat is linked to another account now"
    change = ChangeNotificationSettings(store, clock, None)
    with pytest.raises(InvalidValue, match="linked to another account"):
        await change(USER, {}, [ChannelChange("telegram", True, "77")], None)
    # dave's own channel may point there, and anyone's a chat nobody linked, or an @channel.
    await change("dave", {}, [ChannelChange("telegram", True, "77")], None)
    await change(USER, {}, [ChannelChange("telegram", True, "@carols_channel")], None)
