"""Issue 16 in the worker: `sniper worker` replaying the bundled scenario (its launches, 09:50 to
10:10, so the test is short) runs the notifier beside the agents. Each notifiable event reaches
each subscribed channel once; a channel that hangs is cut off at its timeout, recorded as
undelivered for its user, and holds up neither the snipe nor the user's other channel.

Reads the wall clock (a replay on an accelerated clock, a receiver that hangs): listed in
tests/time_sensitive.txt. The timings are printed; the only bound asserted is the generous one:
the buy is not held back by the hanging channel's timeout."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from adapters.eventstore.migrate import ensure_schema
from adapters.eventstore.sqlalchemy_store import SqlEventStore, open_engine
from adapters.notifications import SqlNotificationOutbox
from application.notifications import ListUndeliveredNotifications
from domain.events import SnipeOrderFilled
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.notifications import notification_sealer
from entrypoints.worker import run_worker
from tests.alerts.fake_http import FakeHttpServer
from tests.fakes.http_server import HttpRequest
from tests.fakes.telegram import FakeTelegram
from tests.notifications.support import ALICE_CHAT, BOB_CHAT, Subscription, expected_sources, outbox_rows, subscribe

RUN = "w1"
SPEED = 300
HANG_TIMEOUT = 4.0  # SNIPER_NOTIFY_TIMEOUT_SECONDS


@dataclass
class HangingReceiver(FakeHttpServer):
    """A webhook receiver whose first request hangs (never answered in time), the rest answered
    at once; notes when each request arrived."""

    arrivals: list[float] = field(default_factory=list)

    async def handle(self, request: HttpRequest) -> tuple[int, bytes]:
        self.arrivals.append(time.monotonic())
        self.requests.append(request)
        if len(self.arrivals) == 1:
            await asyncio.sleep(60)
        return self.status, self.reply


def morning(tmp_path) -> str:  # noqa: ANN001
    doc = json.loads(BUNDLED_SCENARIO.read_text())
    doc["start"], doc["end"] = "2026-11-25T09:50:00Z", "2026-11-25T10:10:00Z"
    path = tmp_path / "morning.json"
    path.write_text(json.dumps(doc))
    return str(path)


async def test_the_worker_notifies_once_and_a_hanging_channel_holds_up_no_snipe(tmp_path) -> None:  # noqa: ANN001
    async with FakeTelegram() as tg, HangingReceiver() as hang:
        settings = load_settings({
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}",
            "SNIPER_SCENARIO": morning(tmp_path), "SNIPER_REPLAY_SPEED": str(SPEED),
            "SNIPER_SNIPE_WINDOW_SECONDS": "600",  # room for a loaded machine at this speed
            "TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.api_url,
            "SNIPER_NOTIFY_TIMEOUT_SECONDS": str(HANG_TIMEOUT), "SNIPER_NOTIFY_ATTEMPTS": "1",
            "SNIPER_NOTIFY_PER_SECOND": "200", "SNIPER_NOTIFY_ALLOW_PRIVATE": "1",  # receivers on 127.0.0.1
        })
        engine = await open_engine(settings.store_url)
        await ensure_schema(engine, initialise_empty=True)
        store = SqlEventStore(engine)
        sealer = notification_sealer(settings)
        alice = Subscription(f"alice.{RUN}", {"telegram": ALICE_CHAT})
        everything_but = frozenset({"target_created", "exit", "snipe_failed", "position_closed", "emergency_stop"})
        bob = Subscription(f"bob.{RUN}", {"telegram": BOB_CHAT, "webhook": f"{hang.url}/bob"}, off=everything_but)
        await subscribe(store, sealer, alice)
        after = await subscribe(store, sealer, bob)

        started = time.monotonic()
        out = io.StringIO()
        run = await run_worker(settings, out, stop_signals=False, run_id=RUN)
        took = time.monotonic() - started

        history = await store.read_all()
        rows = await outbox_rows(engine)
        undelivered = await ListUndeliveredNotifications(SqlNotificationOutbox(engine))(bob.user_id)
        await engine.dispose()

    assert run.stopped_by == "end of the replay"
    expected = expected_sources(history, [alice, bob], after)
    for (user, channel), sources in expected.items():
        assert Counter(r.source for r in rows if r.user_id == user and r.channel == channel) == sources, (user, channel)
    assert Counter(m.text for m in tg.sent_to(ALICE_CHAT)) == Counter(
        f"{r.title}\n{r.body}" for r in rows if r.user_id == alice.user_id and r.channel == "telegram")
    assert all(r.status == "delivered" for r in rows if r.channel == "telegram")
    # Bob's kinds: a schedule and a fill, on Telegram at once, however long his webhook hangs.
    bob_texts = [m.text for m in tg.sent_to(BOB_CHAT)]
    assert len(bob_texts) == 2 and bob_texts[0].startswith("Snipe scheduled") and bob_texts[1].startswith("Bought"), \
        out.getvalue()[-3000:]
    assert bob_texts[0].startswith("Snipe scheduled") and bob_texts[1].startswith("Bought")
    # The webhook's hanging request: cut off at its timeout, recorded undelivered with the reason,
    # for bob to see; the next message went out after it, in order.
    cut_off = f"webhook: no answer within {HANG_TIMEOUT:g} s"
    assert [(r.kind, r.last_error) for r in undelivered] == [("snipe_scheduled", cut_off)]
    webhook = [r for r in rows if r.user_id == bob.user_id and r.channel == "webhook"]
    assert [(r.kind, r.status) for r in webhook] == [("snipe_scheduled", "undelivered"), ("snipe_filled", "delivered")]
    assert [json.loads(r.body)["kind"] for r in hang.requests] == ["snipe_scheduled", "snipe_filled"]

    # The snipe while the channel hung: bob's fill reached his Telegram during the webhook's hang,
    # so the buy before it was not held back by the hanging channel.
    [fill] = [r.event for r in history if isinstance(r.event, SnipeOrderFilled) and r.user_id == bob.user_id]
    [bought] = [m for m in tg.sent_to(BOB_CHAT) if m.text.startswith("Bought")]
    assert hang.arrivals
    into_hang = bought.at - hang.arrivals[0]
    fill_real_ms = float(fill.latency_ms) / SPEED
    print(f"\nreplay {took:.1f} s at {SPEED}x; bob's fill on Telegram {into_hang * 1000:.0f} ms into his webhook's "
          f"{HANG_TIMEOUT:g} s hang; the fill {fill_real_ms:.0f} ms of real time after the open "
          f"({float(fill.latency_ms):.0f} ms of replay time)")
    assert 0 < into_hang < HANG_TIMEOUT
    assert fill_real_ms < HANG_TIMEOUT * 1000
