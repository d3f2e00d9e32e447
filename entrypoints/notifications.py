"""Traders' notifications in the worker: the notifier built from the settings, run beside the agents.

One notifier delivers across workers (the lease in the database: application/notifications.py),
on its own task, so a channel that hangs never holds up a snipe. Needs the SQL store (SQLite or
Postgres); with memory:// there is nothing to follow across processes and it is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from adapters.clock import SystemClock
from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.notifications import AppriseSender, KeyRingSealer, SqlNotificationOutbox, TelegramSender, WebhookSender
from application.notifications import (
    ChannelSender,
    DailySummaries,
    DeliveryPolicy,
    NotificationDelivery,
    SecretSealer,
    TradeNotifier,
)
from application.ports import Clock, EventStore
from entrypoints.config import Settings, revealed

log = logging.getLogger(__name__)

# How long a stopping worker waits for the messages of its last events to go out.
FINAL_DRAIN = timedelta(seconds=10)


class _KeyRingOnFirstUse:
    """The credentials' key ring as a sealer, read when a secret is first sealed or opened: a
    deployment whose traders keep no channel secrets never needs a key for notifications (and the
    embedded default makes no development key file for them). No key where one is needed: the
    ConfigurationError says which setting, and no secret is stored or sent."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sealer: KeyRingSealer | None = None

    def __repr__(self) -> str:
        return "KeyRingOnFirstUse()"

    def _ring(self) -> KeyRingSealer:
        if self._sealer is None:
            from entrypoints.keys import key_ring

            self._sealer = KeyRingSealer(key_ring(self._settings))
        return self._sealer

    def seal(self, plaintext: str, owner: str, field_name: str) -> str:
        return self._ring().seal(plaintext, owner, field_name)

    def open(self, sealed: str, owner: str, field_name: str) -> str:
        return self._ring().open(sealed, owner, field_name)


def notification_sealer(settings: Settings) -> SecretSealer:
    """Channel secrets sealed with the credentials' key ring (ENCRYPTION_KEY), read on first use."""
    return _KeyRingOnFirstUse(settings)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    s = settings
    return DeliveryPolicy(timeout=s.sniper_notify_timeout_seconds, attempts=s.sniper_notify_attempts,
                          first_retry=timedelta(seconds=s.sniper_notify_retry_seconds),
                          per_destination=s.sniper_notify_per_second)


def senders(settings: Settings, client: httpx.AsyncClient) -> dict[str, ChannelSender]:
    s = settings
    found: dict[str, ChannelSender] = {"webhook": WebhookSender(client, allow_private=s.sniper_notify_allow_private)}
    if s.telegram_bot_token:
        found["telegram"] = TelegramSender(client, s.telegram_bot_token.reveal(), s.telegram_api_url)
    via_apprise = AppriseSender(smtp_url=revealed(s.sniper_smtp_url) or None, smtp_from=s.sniper_smtp_from,
                                timeout=s.sniper_notify_timeout_seconds, allow_private=s.sniper_notify_allow_private)
    found.update(discord=via_apprise, slack=via_apprise, email=via_apprise)
    return found


@contextlib.asynccontextmanager
async def trade_notifier(settings: Settings, store: EventStore, clock: Clock, holder: str,
                         *, poll: timedelta = timedelta(milliseconds=200),
                         batch: int = 500) -> AsyncIterator[TradeNotifier | None]:
    """The worker's notifier (None when off or on memory://), with its HTTP client closed after."""
    if not settings.sniper_notify or not isinstance(store, SqlEventStore):
        yield None
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.sniper_notify_timeout_seconds)) as client:
        outbox = SqlNotificationOutbox(store.engine)
        delivery = NotificationDelivery(outbox, store, senders(settings, client), notification_sealer(settings),
                                        SystemClock(), delivery_policy(settings))
        notifier = TradeNotifier(outbox, delivery, clock, holder, poll=poll, summaries=DailySummaries(store),
                                 batch=batch)
        try:
            yield notifier
        finally:
            await notifier.close()


async def run_notifier(notifier: TradeNotifier, stop: asyncio.Event, final_drain: timedelta = FINAL_DRAIN) -> None:
    """Run until `stop`, then one last round for the last events and a bounded wait for its sends."""
    await notifier.run(stop, final_drain)
