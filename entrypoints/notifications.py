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
from application.errors import ConfigurationError
from application.notifications import (
    ChannelSender,
    DailySummaries,
    DeliveryPolicy,
    NotificationDelivery,
    SecretSealer,
    TradeNotifier,
)
from application.ports import Clock, EventStore
from entrypoints.config import Settings

log = logging.getLogger(__name__)

# How long a stopping worker waits for the messages of its last events to go out.
FINAL_DRAIN = timedelta(seconds=10)


def notification_sealer(settings: Settings) -> SecretSealer | None:
    """The credentials' key ring as a sealer, or None when this deployment has no key (then a
    channel secret can be neither stored nor opened; the API says so)."""
    from entrypoints.keys import key_ring

    try:
        return KeyRingSealer(key_ring(settings))
    except ConfigurationError as exc:
        log.warning("notification channel secrets cannot be sealed or opened: %s", exc)
        return None


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    n = settings.notify
    return DeliveryPolicy(timeout=n.timeout, attempts=n.attempts, first_retry=n.first_retry, per_destination=n.per_second)


def senders(settings: Settings, client: httpx.AsyncClient) -> dict[str, ChannelSender]:
    o, n = settings.observability, settings.notify
    found: dict[str, ChannelSender] = {"webhook": WebhookSender(client)}
    if o.telegram_bot_token:
        found["telegram"] = TelegramSender(client, o.telegram_bot_token, o.telegram_api_url)
    via_apprise = AppriseSender(smtp_url=n.smtp_url, smtp_from=n.smtp_from, timeout=n.timeout)
    found.update(discord=via_apprise, slack=via_apprise, email=via_apprise)
    return found


@contextlib.asynccontextmanager
async def trade_notifier(settings: Settings, store: EventStore, clock: Clock, holder: str,
                         *, poll: timedelta = timedelta(milliseconds=200),
                         batch: int = 500) -> AsyncIterator[TradeNotifier | None]:
    """The worker's notifier (None when off or on memory://), with its HTTP client closed after."""
    if not settings.notify.enabled or not isinstance(store, SqlEventStore):
        yield None
        return
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.notify.timeout)) as client:
        outbox = SqlNotificationOutbox(store.engine)
        delivery = NotificationDelivery(outbox, store, senders(settings, client), notification_sealer(settings),
                                        SystemClock(), delivery_policy(settings))
        notifier = TradeNotifier(outbox, delivery, clock, holder, poll=poll, summaries=DailySummaries(store), batch=batch)
        try:
            yield notifier
        finally:
            await notifier.close()


async def run_notifier(notifier: TradeNotifier, stop: asyncio.Event, final_drain: timedelta = FINAL_DRAIN) -> None:
    """Run until `stop`, then one last round for the last events and a bounded wait for its sends."""
    await notifier.run(stop, final_drain)
