"""Issue 16, done when: the bundled scenario's history reaches each subscribed user's channels
(a fake Telegram Bot API, a fake SMTP server, a webhook receiver) exactly once per notifiable
event, none for a kind turned off, and the same set when the notifier's worker stops in the
middle and another takes over (no repeats, none lost).

The history is the bundled scenario played by `sniper demo`'s loop (virtual time: fast and the
same each run) into SQLite, plus a person's global emergency stop and a trader's own, each
turned on and off. The notifier is the worker's (entrypoints/notifications.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import update

from adapters.clock import ManualClock, SystemClock
from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.schema import proj_checkpoints
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine
from adapters.notifications import SqlNotificationOutbox
from application import repository
from application.notifications import PENDING
from domain.events import Cause
from domain.safety import SafetySwitch, safety_stream
from entrypoints.config import Settings, load_settings
from entrypoints.notifications import notification_sealer, trade_notifier
from tests.fakes.smtp import FakeSmtp
from tests.fakes.telegram import FakeTelegram
from tests.fakes.webhook import WebhookReceiver
from tests.notifications.support import (
    ALICE_CHAT,
    BOB_CHAT,
    WEBHOOK_SECRET,
    Subscription,
    day,
    demo_history,
    expected_sources,
    outbox_rows,
    signed,
    subscribe,
    webhook_sources,
)

RUN = "n1"
SUMMARY_DAY = "2026-11-25"


def settings_for(tmp_path, tg: FakeTelegram, smtp: FakeSmtp) -> Settings:  # noqa: ANN001
    return load_settings({
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}",
        "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.api_url,
        "SNIPER_SMTP_URL": smtp.url, "SNIPER_SMTP_FROM": "sniper@example.com",
        "SNIPER_NOTIFY_PER_SECOND": "500", "SNIPER_NOTIFY_TIMEOUT_SECONDS": "5",
        "SNIPER_NOTIFY_ALLOW_PRIVATE": "1",  # the receivers are on 127.0.0.1
    })


async def open_store(settings: Settings) -> SqlEventStore:
    engine = await open_engine(settings.store_url)
    await ensure_schema(engine, initialise_empty=True)
    return SqlEventStore(engine)


async def stop_and_clear(store: SqlEventStore, scope: str, by: str, reason: str) -> None:
    now = SystemClock().now()
    switch = await repository.find(store, SafetySwitch, safety_stream(scope)) or SafetySwitch.for_scope(scope)
    switch.activate(reason, by, Cause(now, f"halt-{scope}"))
    await repository.save(store, switch)
    switch.clear(by, Cause(now + timedelta(seconds=1), f"resume-{scope}"))
    await repository.save(store, switch)


async def until_all_sent(outbox: SqlNotificationOutbox, store: SqlEventStore, notifier, seconds: float = 20) -> None:  # noqa: ANN001
    """Rounds until every event is planned and nothing is pending."""
    clock = SystemClock()
    deadline = clock.now() + timedelta(seconds=seconds)
    while clock.now() < deadline:
        await notifier.round()
        await notifier.delivery.idle()
        rows = await outbox_rows(store.engine)
        if await outbox.checkpoint() == await store.last_position() and not any(r.status == PENDING for r in rows):
            return
    raise AssertionError(f"the notifier did not finish within the time: checkpoint {await outbox.checkpoint()} of "
                         f"{await store.last_position()}; pending: "
                         f"{[(r.id, r.channel, r.attempts, r.last_error) for r in rows if r.status == PENDING][:10]}")


async def test_every_event_once_per_channel_across_a_notifier_restart(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    with FakeSmtp() as smtp:
        async with FakeTelegram() as tg, WebhookReceiver() as hook:
            settings = settings_for(tmp_path, tg, smtp)
            store = await open_store(settings)
            sealer = notification_sealer(settings)
            alice = Subscription(f"alice.{RUN}", {"telegram": ALICE_CHAT, "email": "alice@example.com",
                                                  "webhook": f"{hook.url}/alice"},
                                 off=frozenset({"target_created"}), silent=frozenset({"exit"}), daily_at="10:30")
            bob = Subscription(f"bob.{RUN}", {"telegram": BOB_CHAT}, off=frozenset({"exit"}))
            await subscribe(store, sealer, alice, {"webhook": WEBHOOK_SECRET})
            after = await subscribe(store, sealer, bob)

            await store.append(await demo_history(monkeypatch, RUN))
            await stop_and_clear(store, "global", "ops@desk", "exchange maintenance")
            await stop_and_clear(store, alice.user_id, alice.user_id, "going to sleep")
            history = await store.read_all()
            last = await store.last_position()
            expected = expected_sources(history, [alice, bob], after)
            kinds = {k for rec in history if (rec.position or 0) > after for k in [type(rec.event).__name__]}
            assert {"SnipeOrderFilled", "TakeProfitHit", "StopLossHit", "PositionClosed", "RiskCheckFailed",
                    "SnipeExpired", "EmergencyStopActivated", "EmergencyStopCleared"} <= kinds, kinds

            clock = ManualClock(day(f"{SUMMARY_DAY}T12:00:00"))  # past alice's 10:30: her summary is due
            outbox = SqlNotificationOutbox(store.engine)

            # Worker A: three rounds of five events each, then it stops (SIGTERM): in the middle.
            async with trade_notifier(settings, store, clock, "worker-a", batch=5) as a:
                assert a is not None
                for _ in range(3):
                    await a.round(whole=False)
                # While A holds the lease, another worker plans and sends nothing.
                async with trade_notifier(settings, store, clock, "worker-c") as c:
                    assert await c.round() == 0 and not c.holding
                stopped = asyncio.Event()
                stopped.set()
                await a.run(stopped, final_drain=timedelta(0))
            middle = await outbox.checkpoint()
            assert after < middle < last, (after, middle, last)
            sent_before_restart = len(tg.messages) + len(hook.requests) + len(smtp.received())
            assert sent_before_restart > 0

            # Worker B: a new process (its own engine), takes the lease A released.
            store_b = await open_store(settings)
            async with trade_notifier(settings, store_b, clock, "worker-b") as b:
                await until_all_sent(SqlNotificationOutbox(store_b.engine), store_b, b)

            # And one more start from a rewound checkpoint: the outbox's keys keep it from repeating.
            async with store_b.engine.begin() as conn:
                await conn.execute(update(proj_checkpoints).where(proj_checkpoints.c.name == "notifications")
                                   .values(position=0))
            async with trade_notifier(settings, store_b, clock, "worker-d") as d:
                await until_all_sent(SqlNotificationOutbox(store_b.engine), store_b, d)

            rows = await outbox_rows(store_b.engine)
            await store_b.engine.dispose()
            await store.engine.dispose()

    assert all(r.status == "delivered" for r in rows), [(r.id, r.status, r.last_error) for r in rows]
    summary = f"daily:{SUMMARY_DAY}"
    for (user, channel), sources in expected.items():
        mine = [r for r in rows if r.user_id == user and r.channel == channel]
        wanted = sources + (Counter({summary: 1}) if user == alice.user_id else Counter())
        assert Counter(r.source for r in mine) == wanted, (user, channel)
    assert not [r for r in rows if r.user_id == alice.user_id and r.kind == "target_created"]
    assert not [r for r in rows if r.user_id == bob.user_id and r.kind in ("exit", "daily_summary")]

    # What the fakes received: exactly the rows, once each.
    def row_texts(user: str, channel: str) -> Counter:
        return Counter(f"{r.title}\n{r.body}" for r in rows if r.user_id == user and r.channel == channel)

    assert Counter(m.text for m in tg.sent_to(ALICE_CHAT)) == row_texts(alice.user_id, "telegram")
    assert Counter(m.text for m in tg.sent_to(BOB_CHAT)) == row_texts(bob.user_id, "telegram")
    assert len(tg.messages) == len(tg.sent_to(ALICE_CHAT)) + len(tg.sent_to(BOB_CHAT))
    # Silent kinds arrive without a sound; the others with one.
    exits = {f"{r.title}\n{r.body}" for r in rows if r.user_id == alice.user_id and r.kind == "exit"}
    assert exits and all(m.disable_notification == (m.text in exits) for m in tg.sent_to(ALICE_CHAT))
    assert not any(m.disable_notification for m in tg.sent_to(BOB_CHAT))

    mails = smtp.received()
    assert len(mails) == sum(1 for r in rows if r.channel == "email")
    assert all(m.recipients == ("alice@example.com",) for m in mails)
    assert Counter(m.subject for m in mails) == Counter(r.title for r in rows if r.channel == "email")

    assert all(signed(r.body, r.headers.get("x-sniper-signature")) for r in hook.requests)
    assert all(r.path == "/alice" for r in hook.requests)
    assert webhook_sources(hook.requests) == expected[(alice.user_id, "webhook")] + Counter({summary: 1})

    texts = [m.text for m in tg.sent_to(ALICE_CHAT)]
    assert any(t.startswith("Bought ") and "ms after the open" in t and "fee" in t for t in texts), texts
    assert any(t.startswith("Take-profit: ") and "P&L of this part +" in t for t in texts), texts
    assert any(t.startswith("Emergency stop ON") and "ops@desk" in t and "exchange maintenance" in t for t in texts)
    assert any(t.startswith("Emergency stop OFF") and alice.user_id in t for t in texts)
    assert any(t.startswith(f"Daily summary {SUMMARY_DAY}") for t in texts)
    print(f"\nnotifications: {len(rows)} delivered ({len(tg.messages)} Telegram, {len(mails)} e-mail, "
          f"{len(hook.requests)} webhook), {sent_before_restart} of them before the restart")
