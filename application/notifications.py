"""Trade notifications per user: what the trade history tells each trader, and its delivery.

Three parts, each its own class:

- `NotificationPlanner` turns recorded events into messages (pure rendering plus the user's
  settings as they were at that event). It runs inside the outbox's batch (NotificationOutbox.
  queue_events), which locks the notifier's checkpoint, writes one outbox row per message and
  channel, and moves the checkpoint in the same transaction: every event is planned once,
  whatever the number of workers and restarts.
- `NotificationDelivery` sends what the outbox holds: each row marked delivered once its channel
  took it; a failure is retried with backoff, then the row is left undelivered, with the reason,
  for the user to see. Each destination (a user's channel) is drained by its own task, in order,
  at its rate limit; a channel that hangs is cut off at its timeout and holds up nobody else.
- `TradeNotifier`: the worker's role: holds the notifier lease (one deliverer across workers),
  plans, queues the daily summaries, delivers.

Delivery is at least once at the edge: a process killed between a channel's answer and the
delivered mark sends that message again after the restart; nothing is ever dropped silently.
Operator alerts (application/alerts.py) are separate: faults, to the deployment's channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from application import repository
from application.errors import ConfigurationError
from application.ports import Clock, EventStore
from domain.errors import InvalidValue
from domain.events import (
    Cause,
    DustWrittenOff,
    EmergencyStopActivated,
    EmergencyStopCleared,
    ExitFilled,
    NotificationSettingsChanged,
    PositionClosed,
    PositionOpened,
    Recorded,
    SnipeExpired,
    SnipeFailed,
    SnipeOrderFilled,
    SnipeScheduled,
    SnipeTargetCreated,
)
from domain.notifications import (
    ChannelKind,
    NotificationChannel,
    NotificationKind,
    NotificationMode,
    NotificationPreferences,
)
from domain.position import position_stream
from domain.safety import GLOBAL_SCOPE
from domain.target import target_stream
from domain.telegram import TELEGRAM_LINKS_STREAM, TelegramLinks
from domain.trader import Trader, trader_stream

log = logging.getLogger(__name__)

NOTIFIER = "notifications"  # the checkpoint's and the lease's name


# --- ports -----------------------------------------------------------------------------------

class SecretSealer(Protocol):
    """Seals a channel secret for one user and field, and opens it again (AES-GCM in adapters)."""

    def seal(self, plaintext: str, owner: str, field_name: str) -> str: ...

    def open(self, sealed: str, owner: str, field_name: str) -> str: ...


class HistoryReader(Protocol):
    """What planning may read, inside the outbox's batch: whole streams, and who set up notifications."""

    async def stream(self, stream_id: str) -> list[Recorded]: ...

    async def subscribers(self) -> list[str]:
        """Users who ever recorded notification settings."""
        ...


@dataclass(frozen=True, slots=True)
class Queued:
    """One message for one channel of one user, before it is written to the outbox."""

    source: str  # "event:<position>" or "daily:<YYYY-MM-DD>"
    event_position: int | None
    user_id: str
    channel: str
    kind: str
    title: str
    body: str
    silent: bool


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    source: str
    event_position: int | None
    user_id: str
    channel: str
    kind: str
    title: str
    body: str
    silent: bool
    status: str  # pending, delivered, undelivered
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None


PENDING, DELIVERED, UNDELIVERED = "pending", "delivered", "undelivered"

Plan = Callable[[Sequence[Recorded], HistoryReader], Awaitable[list[Queued]]]


class NotificationOutbox(Protocol):
    """The notifier's checkpoint, its outbox rows and its lease, in the event store's database."""

    async def queue_events(self, plan: Plan, now: datetime, batch: int = 500) -> int:
        """One batch, in one transaction: lock the notifier's checkpoint, read the events after
        it, write the rows `plan` makes of them (a row already there is kept as it is), move the
        checkpoint. Returns how many events it read (0: caught up)."""
        ...

    async def queue(self, rows: Sequence[Queued], now: datetime) -> int:
        """Write rows not tied to an event (daily summaries); returns how many were new."""
        ...

    async def subscribers_plan(self, plan: Callable[[HistoryReader], Awaitable[list[Queued]]], now: datetime) -> int:
        """Run `plan` on a reader and write what it makes (as `queue`)."""
        ...

    async def pending(self, limit: int = 500) -> list[OutboxEntry]:
        """Rows not yet delivered nor given up, oldest first."""
        ...

    async def delivered(self, entry_id: int, at: datetime, attempts: int) -> None: ...

    async def retry_later(self, entry_id: int, attempts: int, at: datetime, error: str) -> None: ...

    async def give_up(self, entry_id: int, attempts: int, error: str) -> None: ...

    async def for_user(self, user_id: str, status: str | None = None, limit: int = 100) -> list[OutboxEntry]: ...

    async def hold_lease(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the notifier's lease for `holder`; False while another holds it."""
        ...

    async def release_lease(self, holder: str) -> None: ...

    async def checkpoint(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one channel of one user sends: its address and its secret, opened."""

    channel: str
    address: str
    secret: str | None = None


class DeliveryFailed(Exception):
    """The channel did not take the message. `permanent`: retrying cannot help (e.g. the chat
    does not exist, the bot was blocked); `retry_after`: the channel asked to wait this long."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.retry_after = reason, permanent, retry_after


class ChannelSender(Protocol):
    """Sends one message on one kind of channel; raises DeliveryFailed, never anything else
    for a delivery failure. Error messages never carry a secret (a token, a webhook URL)."""

    async def send(self, destination: Destination, entry: OutboxEntry) -> None: ...


# --- settings use cases ----------------------------------------------------------------------

def _secret_field(channel: str) -> str:
    return f"notifications:{channel}"


async def _chat_of_another(store: EventStore, user_id: str, address: str) -> bool:
    """Whether the Telegram chat `address` is linked to another user (the bot acts for them
    there): a user's notifications never go into it."""
    try:
        chat = int(address)
    except ValueError:
        return False  # an @channel: no user's linked chat
    links = await repository.find(store, TelegramLinks, TELEGRAM_LINKS_STREAM)
    owner = links.user_of(chat) if links is not None else None
    return owner is not None and owner != user_id


async def _trader(store: EventStore, user_id: str) -> Trader:
    found = await repository.find(store, Trader, trader_stream(user_id))
    return found if found is not None else Trader.for_user(user_id)


@dataclass(frozen=True, slots=True)
class ChannelChange:
    """A channel as a person sends it: `secret` in the clear (sealed before it is recorded);
    None keeps the stored one (when the channel had one)."""

    kind: str
    enabled: bool = True
    address: str = ""
    secret: str | None = None


# What each channel's secret is: its shape is checked before it is sealed (never echoed in errors).
_SECRET_SCHEMES: dict[str, tuple[str, ...]] = {
    "email": ("smtp://", "smtps://", "smtp+starttls://"),
}
# A Discord or Slack secret is that service's own webhook URL, as it gives it (the forms apprise reads
# natively), or apprise's discord:// / slack:// URL, whose host apprise fixes: a URL on any other host
# would make the worker post the user's trades there (and it takes no private-host check).
_QUERY = r"/?(\?[^\s#]*)?"
_SERVICE_URLS: dict[str, re.Pattern[str]] = {
    "discord": re.compile(r"https://(discord|discordapp)\.com/api/webhooks/[0-9]{1,32}/[A-Za-z0-9_-]{1,200}" + _QUERY
                          + r"|discord://([^\s/@?#]{1,100}@)?[0-9]{1,32}/[A-Za-z0-9_-]{1,200}" + _QUERY),
    "slack": re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9]{1,64}/[A-Za-z0-9]{1,64}/[A-Za-z0-9]{1,64}"
                        + _QUERY + r"|slack://[^\s/?#]\S*"),
}
_SERVICE_FORMS = {
    "discord": "the Discord webhook URL (https://discord.com/api/webhooks/ID/TOKEN, or discordapp.com) or "
               "apprise's discord://ID/TOKEN",
    "slack": "the Slack webhook URL (https://hooks.slack.com/services/T.../B.../...) or apprise's slack://...",
}
MAX_SECRET = 2000


def _check_secret(change: ChannelChange) -> None:
    secret = (change.secret or "").strip()
    if not secret:
        return
    # A value the schema lets through but the channel cannot use: a domain error (422), naming
    # the field and the rule, never the value.
    where = f"channels[{change.kind}].secret"
    if len(secret) > MAX_SECRET:
        raise InvalidValue(f"{where}: at most {MAX_SECRET} characters")
    if change.kind == ChannelKind.TELEGRAM.value:
        raise InvalidValue(f"{where}: telegram takes no secret (the bot is the deployment's, the address your chat id)")
    service = _SERVICE_URLS.get(change.kind)
    if service is not None and not service.fullmatch(secret):
        raise InvalidValue(f"{where}: must be {_SERVICE_FORMS[change.kind]}")
    schemes = _SECRET_SCHEMES.get(change.kind)
    if schemes is not None and not secret.startswith(schemes) or any(c.isspace() for c in secret):
        what = {"email": "an SMTP URL: smtp://, smtps:// or smtp+starttls://user:password@host:port"}
        raise InvalidValue(f"{where}: must be {what.get(change.kind, 'without spaces')}")


class GetNotificationSettings:
    """A user's notification settings as recorded (secrets still sealed: show only whether set)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str) -> NotificationPreferences:
        return (await _trader(self.store, user_id)).notifications


class ChangeNotificationSettings:
    """Replace a user's notification settings as a whole. New secrets are sealed for the user
    and the channel; a channel sent without its secret keeps the one stored. Bad values raise
    a domain error naming the value; nothing is recorded then."""

    def __init__(self, store: EventStore, clock: Clock, sealer: SecretSealer | None) -> None:
        self.store, self.clock, self.sealer = store, clock, sealer

    async def __call__(
        self, user_id: str, modes: Mapping[str, str], channels: Sequence[ChannelChange], daily_summary_at: str | None
    ) -> NotificationPreferences:
        trader = await _trader(self.store, user_id)
        before = trader.notifications
        recorded = []
        for change in channels:
            _check_secret(change)
            if change.secret is not None and change.secret.strip():
                if self.sealer is None:
                    raise ConfigurationError(
                        "this deployment cannot keep channel secrets (no ENCRYPTION_KEY): leave the secret out")
                secret: str | None = self.sealer.seal(change.secret.strip(), user_id, _secret_field(change.kind))
            else:
                stored = before.channel(change.kind)
                secret = stored.secret if stored is not None else None
            if (change.kind == ChannelKind.TELEGRAM.value and change.enabled
                    and await _chat_of_another(self.store, user_id, change.address.strip())):
                raise InvalidValue("channels[telegram].address: that chat is linked to another account; "
                                   "link your own chat with the bot (/link CODE)")
            recorded.append(NotificationChannel(change.kind, change.enabled, change.address, secret))
        wanted = NotificationPreferences(tuple(modes.items()), tuple(recorded), daily_summary_at)
        stored_prefs = trader.change_notifications(wanted, Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)
        return stored_prefs


class LinkTelegramChat:
    """Point a user's Telegram channel at `chat_id` and turn it on, keeping the rest of their
    notification settings (for the Telegram bot's chat linking)."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, chat_id: str) -> NotificationPreferences:
        trader = await _trader(self.store, user_id)
        before = trader.notifications
        channels = [c for c in before.channels if c.kind != ChannelKind.TELEGRAM.value]
        channels.insert(0, NotificationChannel(ChannelKind.TELEGRAM.value, True, str(chat_id)))
        stored = trader.change_notifications(replace(before, channels=tuple(channels)),
                                             Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)
        return stored


class UnlinkTelegramChat:
    """Turn a user's Telegram channel off when it points at `chat_id` (the chat was unlinked);
    anything else stays as it is. Returns whether it changed anything."""

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self.store, self.clock = store, clock

    async def __call__(self, user_id: str, chat_id: str) -> bool:
        trader = await _trader(self.store, user_id)
        before = trader.notifications
        found = before.channel(ChannelKind.TELEGRAM)
        if found is None or not found.enabled or found.address != str(chat_id):
            return False
        channels = tuple(replace(c, enabled=False) if c is found else c for c in before.channels)
        trader.change_notifications(replace(before, channels=channels), Cause(self.clock.now(), trader_stream(user_id)))
        await repository.save(self.store, trader)
        return True


class ListUndeliveredNotifications:
    """The messages that could not be delivered to a user, newest first, with the reason."""

    def __init__(self, outbox: NotificationOutbox) -> None:
        self.outbox = outbox

    async def __call__(self, user_id: str, limit: int = 100) -> list[OutboxEntry]:
        return await self.outbox.for_user(user_id, UNDELIVERED, limit)


# --- rendering -------------------------------------------------------------------------------

_RULES = {
    "TakeProfitHit": "take-profit", "StopLossHit": "stop-loss", "TrailingStopHit": "trailing stop",
    "MaxHoldTimeReached": "max hold time", "EmergencyExitFilled": "emergency exit",
    "DustWrittenOff": "dust written off",
    "ManualExitFilled": "closed by hand",
}


def _num(value: Decimal) -> str:
    """A decimal as people write it: no exponent, no trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _money(value: Decimal, places: int = 4) -> str:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return _num(value)


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + _money(value)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class Rendered:
    kind: NotificationKind
    title: str
    body: str
    recipients: tuple[str, ...] | None = None  # None: the event's user; () : every subscriber


@dataclass
class _Context:
    """What a message needs beyond its event: symbols, launch times, quote assets."""

    reader: HistoryReader
    streams: dict[str, list[Recorded]] = field(default_factory=dict)

    async def stream(self, stream_id: str) -> list[Recorded]:
        if stream_id not in self.streams:
            self.streams[stream_id] = await self.reader.stream(stream_id)
        return self.streams[stream_id]

    async def target(self, target_id: str) -> SnipeTargetCreated | None:
        for rec in await self.stream(target_stream(target_id)):
            if isinstance(rec.event, SnipeTargetCreated):
                return rec.event
        return None

    async def position(self, position_id: str) -> PositionOpened | None:
        for rec in await self.stream(position_stream(position_id)):
            if isinstance(rec.event, PositionOpened):
                return rec.event
        return None

    async def preferences(self, user_id: str, at_position: int) -> NotificationPreferences | None:
        """The user's notification settings as recorded up to `at_position` (None: never set)."""
        found: NotificationPreferences | None = None
        for rec in await self.stream(trader_stream(user_id)):
            if rec.position is not None and rec.position > at_position:
                break
            if isinstance(rec.event, NotificationSettingsChanged):
                e = rec.event
                found = NotificationPreferences(tuple(tuple(m) for m in e.modes), tuple(e.channels),  # type: ignore[misc]
                                                e.daily_summary_at)
        return found


async def render(rec: Recorded, ctx: _Context) -> Rendered | None:
    """The message an event makes, or None when it is not news for a trader."""
    e = rec.event
    K = NotificationKind
    match e:
        case SnipeTargetCreated():
            mode = "live" if e.live else "paper"
            return Rendered(K.TARGET_CREATED, f"Target created: {e.symbol}",
                            f"{e.symbol}: buy {_money(e.quote_amount)} {e.quote_asset} at launch {_when(e.launch_at)} "
                            f"({mode}, exit plan {e.exit_plan.name}, confidence {_num(e.confidence)}).")
        case SnipeScheduled():
            t = await ctx.target(e.target_id)
            symbol = t.symbol if t else e.target_id
            launch = f"launch {_when(t.launch_at)}; " if t else ""
            return Rendered(K.SNIPE_SCHEDULED, f"Snipe scheduled: {symbol}",
                            f"{symbol}: {launch}the buy is sent at {_when(e.execute_at)} "
                            f"(gives up at {_when(e.deadline_at)}).")
        case SnipeOrderFilled():
            t = await ctx.target(e.target_id)
            symbol, asset = (t.symbol, t.quote_asset) if t else (e.target_id, "")
            bought = f"{symbol}: bought {_num(e.quantity)} at {_num(e.price)} for {_money(e.quote_spent)} {asset}"
            fee = f", fee {_num(e.fee)} {e.fee_asset}, {_num(e.latency_ms)} ms after the open"
            return Rendered(K.SNIPE_FILLED, f"Bought {symbol}",
                            bought.rstrip() + fee + f" ({e.attempts} attempt{'s' if e.attempts != 1 else ''}).")
        case SnipeFailed() | SnipeExpired():
            # A refusal by the risk check and an exchange's rejection each end in SnipeFailed,
            # which says why: one message per failed snipe, not one per event.
            t = await ctx.target(e.target_id)
            symbol = t.symbol if t else e.target_id
            if isinstance(e, SnipeExpired):
                title = f"Snipe expired: {symbol}"
            elif e.reason.startswith("refused by risk limits"):
                title = f"Snipe refused: {symbol}"
            elif e.reason.startswith("order rejected"):
                title = f"Snipe rejected: {symbol}"
            else:
                title = f"Snipe failed: {symbol}"
            return Rendered(K.SNIPE_FAILED, title, f"{symbol}: {e.reason}.")
        case ExitFilled():
            p = await ctx.position(e.position_id)
            symbol, asset = (p.symbol, p.quote_asset) if p else (e.position_id, "")
            rule = _RULES.get(type(e).__name__, type(e).__name__)
            if isinstance(e, DustWrittenOff):
                what = f"{_num(e.quantity)} written off ({e.reason or 'cannot be sold'})"
            else:
                what = f"sold {_num(e.quantity)} at {_num(e.price)} for {_money(e.proceeds)} {asset}".rstrip()
            level = f" {e.level + 1}" if e.level is not None else ""  # levels count from 1 for people
            part = f"{symbol}: {rule}{level}, {what}; P&L of this part {_signed(e.realised_pnl)} {asset}"
            return Rendered(K.EXIT, f"{rule.capitalize()}: {symbol}", part.rstrip() + ".")
        case PositionClosed():
            p = await ctx.position(e.position_id)
            symbol, asset = (p.symbol, p.quote_asset) if p else (e.position_id, "")
            result = "profit" if e.realised_pnl > 0 else "loss" if e.realised_pnl < 0 else "break-even"
            return Rendered(K.POSITION_CLOSED, f"Position closed: {symbol} ({result})",
                            f"{symbol}: closed with {_signed(e.realised_pnl)} {asset} (cost {_money(e.total_cost)}, "
                            f"proceeds {_money(e.total_proceeds)}, fees {_money(e.total_fees)}).")
        case EmergencyStopActivated():
            who = f"{e.activated_by} (automatic)" if e.automatic else e.activated_by
            scope = "all trading" if e.scope == GLOBAL_SCOPE else "your trading"
            return Rendered(K.EMERGENCY_STOP, "Emergency stop ON",
                            f"Emergency stop on {scope}, by {who}: {e.reason}.",
                            () if e.scope == GLOBAL_SCOPE else (e.scope,))
        case EmergencyStopCleared():
            scope = "all trading" if e.scope == GLOBAL_SCOPE else "your trading"
            return Rendered(K.EMERGENCY_STOP, "Emergency stop OFF",
                            f"Emergency stop on {scope} cleared by {e.cleared_by}.",
                            () if e.scope == GLOBAL_SCOPE else (e.scope,))
    return None


class NotificationPlanner:
    """Messages of an event batch, per subscribed user and active channel."""

    async def __call__(self, records: Sequence[Recorded], reader: HistoryReader) -> list[Queued]:
        ctx = _Context(reader)
        subscribers: list[str] | None = None
        queued: list[Queued] = []
        for rec in records:
            rendered = await render(rec, ctx)
            if rendered is None or rec.position is None:
                continue
            if rendered.recipients is None:
                users: Iterable[str] = (rec.user_id,)
            elif rendered.recipients == ():
                if subscribers is None:
                    subscribers = await reader.subscribers()
                users = subscribers
            else:
                users = rendered.recipients
            for user in users:
                prefs = await ctx.preferences(user, rec.position)
                if prefs is None:
                    continue
                queued += messages_for(prefs, user, f"event:{rec.position}", rec.position, rendered.kind,
                                       rendered.title, rendered.body)
        return queued


def messages_for(prefs: NotificationPreferences, user_id: str, source: str, position: int | None,
                 kind: NotificationKind, title: str, body: str) -> list[Queued]:
    mode = prefs.mode(kind)
    if mode is NotificationMode.OFF:
        return []
    return [Queued(source, position, user_id, c.kind, kind.value, title, body, mode is NotificationMode.SILENT)
            for c in prefs.active_channels()]


# --- daily summary ---------------------------------------------------------------------------

class DailySummaries:
    """Each subscribed user's summary of the last 24 hours, once a day at the time they chose
    (UTC, on the worker's clock). Only the latest due day is sent: a worker that was down at
    the time sends it when it is back, not the days it missed."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._done: set[tuple[str, str]] = set()

    def plan(self, now: datetime) -> Callable[[HistoryReader], Awaitable[list[Queued]]]:
        async def plan(reader: HistoryReader) -> list[Queued]:
            ctx = _Context(reader)
            queued: list[Queued] = []
            for user in await reader.subscribers():
                prefs = await ctx.preferences(user, 2**62)
                if prefs is None or not prefs.daily_summary_at:
                    continue
                hour, minute = (int(x) for x in prefs.daily_summary_at.split(":"))
                due = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
                if now < due:
                    due -= timedelta(days=1)
                key = (user, due.date().isoformat())
                if key in self._done:
                    continue
                self._done.add(key)
                body = await self.summary(user, due - timedelta(days=1), due)
                queued += messages_for(prefs, user, f"daily:{key[1]}", None, NotificationKind.DAILY_SUMMARY,
                                       f"Daily summary {key[1]}", body)
            return queued

        return plan

    async def summary(self, user_id: str, start: datetime, end: datetime) -> str:
        fills = exits = closed = failed = 0
        spent = pnl = Decimal(0)
        for rec in await self.store.read_user(user_id):
            if not (start <= rec.occurred_at < end):
                continue
            e = rec.event
            if isinstance(e, SnipeOrderFilled):
                fills, spent = fills + 1, spent + e.quote_spent
            elif isinstance(e, ExitFilled):
                exits, pnl = exits + 1, pnl + e.realised_pnl
            elif isinstance(e, PositionClosed):
                closed += 1
            elif isinstance(e, (SnipeFailed, SnipeExpired)):
                failed += 1
        return (f"{_when(start)} to {_when(end)}: {fills} snipe(s) filled for {_money(spent)}, {failed} failed or "
                f"refused; {exits} exit(s), {closed} position(s) closed; realised P&L {_signed(pnl)}.")


# --- delivery --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Timeouts, retries and rate limits. `per_destination`: messages per second to one chat
    or channel of one user (Telegram: about 1 per chat); `per_channel`: per second on a whole
    channel kind (Telegram: 30 per bot)."""

    timeout: float = 5.0
    attempts: int = 5
    first_retry: timedelta = timedelta(seconds=2)
    max_retry: timedelta = timedelta(minutes=5)
    per_destination: float = 1.0
    per_channel: Mapping[str, float] = field(default_factory=lambda: {"telegram": 30.0, "discord": 5.0, "slack": 1.0})

    def backoff(self, attempts: int) -> timedelta:
        return min(self.first_retry * (2 ** max(0, attempts - 1)), self.max_retry)


class _Pace:
    """At most `rate` starts per second: each caller waits for its slot (no burst)."""

    def __init__(self, rate: float, clock: Clock) -> None:
        self.interval = timedelta(seconds=1 / rate) if rate > 0 else timedelta(0)
        self.clock = clock
        self._next: datetime | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = self.clock.now()
            if self._next is not None and self._next > now:
                await self.clock.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


class NotificationDelivery:
    """Sends the outbox's pending rows: one task per destination (user, channel), in order."""

    def __init__(
        self,
        outbox: NotificationOutbox,
        store: EventStore,
        senders: Mapping[str, ChannelSender],
        sealer: SecretSealer | None,
        clock: Clock,
        policy: DeliveryPolicy = DeliveryPolicy(),
    ) -> None:
        self.outbox, self.store, self.senders, self.sealer = outbox, store, dict(senders), sealer
        self.clock, self.policy = clock, policy
        self._draining: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._paces: dict[object, _Pace] = {}
        self._closing = False
        self.sent = 0
        self.started = 0  # rows handed to drains by the last dispatch

    def _pace(self, key: object, rate: float) -> _Pace:
        if key not in self._paces:
            self._paces[key] = _Pace(rate, self.clock)
        return self._paces[key]

    async def dispatch(self) -> int:
        """Start draining every destination that has due rows and is not being drained; returns
        how many rows were handed to drains."""
        if self._closing:
            return 0
        now = self.clock.now()
        by_destination: dict[tuple[str, str], list[OutboxEntry]] = {}
        # A destination drained while the rows are read may have sent some of them since: its rows
        # as read are stale, so it waits for the next dispatch (else a message could go twice).
        held: set[tuple[str, str]] = set(self._draining)
        for entry in await self.outbox.pending():
            key = (entry.user_id, entry.channel)
            if key in held:
                continue
            if entry.next_attempt_at > now:
                held.add(key)  # a later message waits for an earlier one's retry: order is kept
                continue
            by_destination.setdefault(key, []).append(entry)
        started = 0
        self.started = 0
        for key, entries in by_destination.items():
            if key in self._draining:
                continue
            task = asyncio.create_task(self._drain(key, entries), name=f"notify-{key[1]}")
            self._draining[key] = task
            task.add_done_callback(functools.partial(self._drained, key))
            started += len(entries)
        self.started = started
        return started

    @property
    def busy(self) -> bool:
        return bool(self._draining)

    async def idle(self) -> None:
        """Wait for the drains in flight."""
        while self._draining:
            await asyncio.gather(*list(self._draining.values()), return_exceptions=True)

    async def close(self) -> None:
        """Let each drain finish the message in flight (within the channel's timeout), send no
        more, then stop: what is left stays pending for the next notifier."""
        self._closing = True
        tasks = list(self._draining.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.policy.timeout + 1)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _drained(self, key: tuple[str, str], _task: asyncio.Task[None]) -> None:
        self._draining.pop(key, None)

    async def _drain(self, key: tuple[str, str], entries: list[OutboxEntry]) -> None:
        user_id, channel = key
        try:
            destination = await self._destination(user_id, channel)
        except DeliveryFailed as exc:
            for entry in entries:
                await self.outbox.give_up(entry.id, entry.attempts, exc.reason)
            return
        except Exception as exc:  # noqa: BLE001 - the store is away: try again on a later round
            log.warning("notifications to %s of %s wait: %s", channel, user_id, type(exc).__name__)
            return
        sender = self.senders.get(channel)
        for entry in entries:
            if self._closing:
                return
            if sender is None:
                await self.outbox.give_up(entry.id, entry.attempts, f"{channel} is not set up on this deployment")
                continue
            await self._pace(key, self.policy.per_destination).wait()
            await self._pace(channel, self.policy.per_channel.get(channel, 0.0)).wait()
            attempts = entry.attempts + 1
            try:
                async with asyncio.timeout(self.policy.timeout):
                    await sender.send(destination, entry)
            except TimeoutError:
                failure = DeliveryFailed(f"{channel}: no answer within {self.policy.timeout:g} s")
            except DeliveryFailed as exc:
                failure = exc
            except Exception as exc:  # noqa: BLE001 - a channel must never stop the notifier
                failure = DeliveryFailed(f"{channel}: {type(exc).__name__}")
            else:
                await self.outbox.delivered(entry.id, self.clock.now(), attempts)
                self.sent += 1
                continue
            if failure.permanent or attempts >= self.policy.attempts:
                log.warning("notification %s to %s of %s not delivered: %s", entry.id, channel, user_id, failure.reason)
                await self.outbox.give_up(entry.id, attempts, failure.reason)
                continue
            wait = self.policy.backoff(attempts)
            if failure.retry_after is not None:
                wait = max(wait, timedelta(seconds=failure.retry_after))
            await self.outbox.retry_later(entry.id, attempts, self.clock.now() + wait, failure.reason)
            return  # the rest wait behind it (order is kept)

    async def _destination(self, user_id: str, channel: str) -> Destination:
        prefs = (await _trader(self.store, user_id)).notifications
        found = prefs.channel(channel)
        if found is None or not found.enabled:
            raise DeliveryFailed(f"{channel} is no longer among your channels", permanent=True)
        if channel == ChannelKind.TELEGRAM.value and await _chat_of_another(self.store, user_id, found.address):
            # Set before that chat was linked by someone else: never into another user's chat.
            raise DeliveryFailed("telegram: that chat is linked to another account now", permanent=True)
        secret = None
        if found.secret:
            if self.sealer is None:
                raise DeliveryFailed(f"{channel}: its secret cannot be opened here (no key)", permanent=True)
            try:
                secret = self.sealer.open(found.secret, user_id, _secret_field(channel))
            except Exception:  # noqa: BLE001 - the message names no key and no secret
                raise DeliveryFailed(f"{channel}: its stored secret cannot be opened (key changed?)",
                                     permanent=True) from None
        return Destination(channel, found.address, secret)


# --- the worker's role -----------------------------------------------------------------------

class TradeNotifier:
    """Follows the trade history into the outbox and delivers it, while holding the lease.

    `clock` is the market's (daily summaries are due on it); delivery's retries and rate limits
    run on the delivery's own clock (the wall clock)."""

    def __init__(self, outbox: NotificationOutbox, delivery: NotificationDelivery, clock: Clock, holder: str,
                 *, poll: timedelta = timedelta(milliseconds=200), lease_ttl: timedelta = timedelta(seconds=30),
                 summaries: DailySummaries | None = None, batch: int = 500) -> None:
        self.outbox, self.delivery, self.clock, self.holder = outbox, delivery, clock, holder
        self.poll, self.lease_ttl, self.batch = poll, lease_ttl, batch
        self.summaries = summaries
        self.planner = NotificationPlanner()
        self.holding = False
        self._next_summaries: datetime | None = None

    async def round(self, *, whole: bool = True) -> int:
        """One pass: take or renew the lease, plan new events (all of them, or one batch unless
        `whole`), queue due summaries, dispatch. Returns how many events were planned."""
        wall = self.delivery.clock
        self.delivery.started = 0
        self.holding = await self.outbox.hold_lease(self.holder, wall.now(), self.lease_ttl)
        if not self.holding:
            return 0
        planned = 0
        while True:
            read = await self.outbox.queue_events(self.planner, wall.now(), self.batch)
            planned += read
            if read < self.batch or not whole:
                break
        # Summaries are looked for once a minute (it reads every subscriber's settings), and on the first round.
        if self.summaries is not None and (self._next_summaries is None or wall.now() >= self._next_summaries):
            self._next_summaries = wall.now() + timedelta(minutes=1)
            await self.outbox.subscribers_plan(self.summaries.plan(self.clock.now()), wall.now())
        await self.delivery.dispatch()
        return planned

    async def run(self, stop: asyncio.Event, final_drain: timedelta = timedelta(seconds=10)) -> None:
        """Rounds every `poll` (real time) until `stop`; a failing round is logged and retried.
        At the stop, one last round for the last events, and up to `final_drain` for its sends;
        what is still unsent then stays in the outbox for the next notifier."""
        try:
            while not stop.is_set():
                try:
                    if await self.round(whole=False) >= self.batch:
                        continue  # a backlog: the next batch at once (its messages are on their way)
                except Exception:  # noqa: BLE001 - the store may be away for a while: try again
                    log.warning("notifier round failed", exc_info=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.poll.total_seconds())
            if final_drain > timedelta(0):
                try:
                    async with asyncio.timeout(final_drain.total_seconds()):
                        # Until nothing due is left (a row waiting for its retry stays for the next notifier).
                        while True:
                            busy = self.delivery.busy  # a drain in flight may leave rows behind it
                            planned = await self.round()
                            started = self.delivery.started
                            await self.delivery.idle()
                            if not (planned or started or busy):
                                break
                except TimeoutError:
                    log.warning("notifications still in flight at stop: the next notifier sends them")
                except Exception:  # noqa: BLE001
                    log.warning("last notifier round failed", exc_info=True)
        finally:
            await self.close()

    async def close(self) -> None:
        """Finish the sends in flight, send no more, and let another worker take the lease."""
        await self.delivery.close()
        if self.holding:
            self.holding = False
            try:
                await self.outbox.release_lease(self.holder)
            except Exception:  # noqa: BLE001
                log.warning("notifier lease not released", exc_info=True)
