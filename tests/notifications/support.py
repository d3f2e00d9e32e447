"""What the notification tests share: the subscriptions of the scenario's traders, and the messages
that must come of a recorded history (worked out here from the events, not by the notifier)."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.clock import SystemClock
from adapters.eventstore.schema import notification_outbox
from adapters.paper.scenario import load_scenario
from application.notifications import ChangeNotificationSettings, ChannelChange, SecretSealer
from application.ports import EventStore
from domain.events import ExitFilled, Recorded
from entrypoints.config import BUNDLED_SCENARIO, load_settings

WEBHOOK_SECRET = "whsec-test-0123456789"
ALICE_CHAT, BOB_CHAT = "1001", "-1002"

KIND_OF = {
    "SnipeTargetCreated": "target_created",
    "SnipeScheduled": "snipe_scheduled",
    "SnipeOrderFilled": "snipe_filled",
    "SnipeFailed": "snipe_failed",
    "SnipeExpired": "snipe_failed",
    "PositionClosed": "position_closed",
    "EmergencyStopActivated": "emergency_stop",
    "EmergencyStopCleared": "emergency_stop",
}


@dataclass(frozen=True)
class Subscription:
    user_id: str
    channels: dict[str, str]  # channel -> address
    off: frozenset[str] = frozenset()
    silent: frozenset[str] = frozenset()
    daily_at: str | None = None


def kind_of(rec: Recorded) -> str | None:
    if isinstance(rec.event, ExitFilled):
        return "exit"
    return KIND_OF.get(type(rec.event).__name__)


def recipients(rec: Recorded, users: list[str]) -> list[str]:
    scope = getattr(rec.event, "scope", None)
    if scope is not None:
        return list(users) if scope == "global" else [scope]
    return [rec.user_id]


async def demo_history(monkeypatch, run_id: str) -> list[Recorded]:  # noqa: ANN001
    """The bundled scenario as `sniper demo` plays it (virtual time) on memory://, which is fast:
    its events without positions, to be appended to a test's store after the subscriptions."""
    from entrypoints import demo

    stores = []
    follow = demo.follow_run

    async def following(book, store, scenario, run, out):  # noqa: ANN001, ANN202
        stores.append(store)
        return await follow(book, store, scenario, run, out)

    monkeypatch.setattr(demo, "follow_run", following)
    await demo.run_demo(load_settings({"DATABASE_URL": "memory://"}), load_scenario(BUNDLED_SCENARIO), run_id,
                        io.StringIO())
    return [replace(rec, position=None) for rec in await stores[0].read_all()]


async def subscribe(store: EventStore, sealer: SecretSealer | None, sub: Subscription,
                    secrets: dict[str, str] | None = None) -> int:
    """Record the subscription; returns the position after which it holds."""
    modes = {k: "off" for k in sub.off} | {k: "silent" for k in sub.silent}
    if sub.daily_at:
        modes["daily_summary"] = "on"
    channels = [ChannelChange(kind, True, address, (secrets or {}).get(kind)) for kind, address in sub.channels.items()]
    await ChangeNotificationSettings(store, SystemClock(), sealer)(sub.user_id, modes, channels, sub.daily_at)
    return await store.last_position()


def expected_sources(history: list[Recorded], subs: list[Subscription], after: int) -> dict[tuple[str, str], Counter]:
    """(user, channel) -> the event positions that must reach it, once each (Counter of sources)."""
    users = [s.user_id for s in subs]
    by_user = {s.user_id: s for s in subs}
    found: dict[tuple[str, str], Counter] = {(s.user_id, c): Counter() for s in subs for c in s.channels}
    for rec in history:
        kind = kind_of(rec)
        if kind is None or (rec.position or 0) <= after:
            continue
        for user in recipients(rec, users):
            sub = by_user.get(user)
            if sub is None or kind in sub.off:
                continue
            for channel in sub.channels:
                found[(user, channel)][f"event:{rec.position}"] += 1
    return found


async def outbox_rows(engine: AsyncEngine) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(select(notification_outbox).order_by(notification_outbox.c.id))).all())


def signed(body: bytes, signature: str | None) -> bool:
    wanted = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(wanted, signature)


def webhook_sources(requests: list) -> Counter:
    return Counter(json.loads(r.body)["source"] for r in requests)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
