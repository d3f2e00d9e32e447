"""The notifier's outbox on Postgres: two notifiers planning the same history at once (each its
own engine, as two workers) queue every message exactly once; the lease keeps one deliverer."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine
from adapters.notifications import SqlNotificationOutbox
from application.notifications import NotificationPlanner
from tests.notifications.support import (
    ALICE_CHAT,
    BOB_CHAT,
    Subscription,
    demo_history,
    expected_sources,
    outbox_rows,
    subscribe,
)

pytestmark = pytest.mark.postgres

RUN = "pg1"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def test_two_notifiers_on_postgres_queue_each_message_once(fresh_postgres_database: str, monkeypatch) -> None:  # noqa: ANN001
    engines = [await open_engine(fresh_postgres_database) for _ in range(2)]
    try:
        await ensure_schema(engines[0], initialise_empty=True)
        store = SqlEventStore(engines[0])
        alice = Subscription(f"alice.{RUN}", {"telegram": ALICE_CHAT, "email": "alice@example.com"},
                             off=frozenset({"snipe_scheduled"}))
        bob = Subscription(f"bob.{RUN}", {"telegram": BOB_CHAT})
        await subscribe(store, None, alice)
        after = await subscribe(store, None, bob)
        await store.append(await demo_history(monkeypatch, RUN))

        planner = NotificationPlanner()

        async def notifier(engine) -> int:  # noqa: ANN001
            outbox, read = SqlNotificationOutbox(engine), 0
            while (done := await outbox.queue_events(planner, NOW, batch=5)) > 0:
                read += done
            return read

        reads = await asyncio.gather(*(notifier(e) for e in engines))
        assert sum(reads) == await store.last_position()  # each event read by exactly one of them
        assert await SqlNotificationOutbox(engines[1]).checkpoint() == await store.last_position()

        rows = await outbox_rows(engines[0])
        expected = expected_sources(await store.read_all(), [alice, bob], after)
        for (user, channel), sources in expected.items():
            assert Counter(r.source for r in rows if r.user_id == user and r.channel == channel) == sources
        assert len(rows) == sum(sum(c.values()) for c in expected.values())

        a, b = SqlNotificationOutbox(engines[0]), SqlNotificationOutbox(engines[1])
        ttl = timedelta(seconds=30)
        assert await a.hold_lease("a", NOW, ttl)
        assert not await b.hold_lease("b", NOW + timedelta(seconds=1), ttl)
        await a.release_lease("a")
        assert await b.hold_lease("b", NOW + timedelta(seconds=2), ttl)
    finally:
        for engine in engines:
            await engine.dispose()
