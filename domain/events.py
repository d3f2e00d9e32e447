"""Domain events: the trade history. Each is a frozen dataclass of its own fields;
the envelope `Recorded` carries stream id, version, time, user and correlation id.

The adapters serialise these with msgspec; the names of the classes are the stored
event types, so renaming one is a migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.exit_plans import ExitPlan
from domain.notifications import NotificationChannel
from domain.risk import RiskProfile


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Marker base for every event of the trade history."""

    @property
    def type_name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class Cause:
    """When a command happened and which flow it belongs to (both passed in, never read)."""

    at: datetime
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """One event as stored: its stream, version within the stream, and the global position
    the store gave it (None until appended)."""

    stream_id: str
    version: int
    occurred_at: datetime
    user_id: str
    correlation_id: str
    event: DomainEvent
    position: int | None = None


# --- listings -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ListingAnnounced(DomainEvent):
    coin_id: str
    ticker: str
    full_name: str
    symbol: str
    launch_at: datetime
    quote_asset: str = "USDT"


@dataclass(frozen=True, slots=True)
class ListingReadyDetected(DomainEvent):
    coin_id: str
    symbol: str
    sts: int
    st: int
    tt: int
    launch_at: datetime
    lead_seconds: int


@dataclass(frozen=True, slots=True)
class ListingAnalysed(DomainEvent):
    """An advisory opinion on a listing (stream analysis-<coin id>): an AI provider's or the
    rules'. Never an input to trading. `fallbacks` says why earlier providers were passed over."""

    coin_id: str
    symbol: str
    score: Decimal  # 0..100
    explanation: str
    provider: str
    similar_symbols: tuple[str, ...]
    cost_usd: Decimal
    fallbacks: tuple[str, ...] = ()


# --- snipe targets --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SnipeTargetCreated(DomainEvent):
    target_id: str
    coin_id: str
    symbol: str
    launch_at: datetime
    quote_amount: Decimal
    quote_asset: str
    exit_plan: ExitPlan
    confidence: Decimal
    live: bool
    # The highest price the entry may pay (an IMMEDIATE_OR_CANCEL limit buy at it); None: a market
    # buy. Added by issue 14: events recorded before it decode with None.
    max_entry_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SnipeTargetReady(DomainEvent):
    target_id: str
    pattern: str
    confidence: Decimal
    lead_seconds: int


@dataclass(frozen=True, slots=True)
class SnipeScheduled(DomainEvent):
    target_id: str
    execute_at: datetime
    deadline_at: datetime
    client_order_id: str


@dataclass(frozen=True, slots=True)
class SnipeOrderSubmitted(DomainEvent):
    target_id: str
    client_order_id: str
    symbol: str
    quote_amount: Decimal
    # Set when the buy is an IMMEDIATE_OR_CANCEL limit at this price (the target's cap); None: market.
    max_entry_price: Decimal | None = None
    # The lease the submitting run held on the snipe: its fencing token and its fence counter's
    # epoch (application.ports.Lease). None on events recorded before they were kept: not known.
    lease_token: int | None = None
    lease_epoch: str | None = None


@dataclass(frozen=True, slots=True)
class SnipeOrderFilled(DomainEvent):
    target_id: str
    client_order_id: str
    exchange_order_id: str
    price: Decimal
    quantity: Decimal
    quote_spent: Decimal
    fee: Decimal
    fee_asset: str
    attempts: int
    latency_ms: Decimal
    # Set when the store could not be reached for the emergency stop just before the launch: the
    # stop was taken from a read this many milliseconds old (still an answer under 5 s).
    halt_read_age_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SnipeOrderRejected(DomainEvent):
    target_id: str
    client_order_id: str
    code: str
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class SnipeFailed(DomainEvent):
    target_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SnipeExpired(DomainEvent):
    target_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SnipeTargetCancelled(DomainEvent):
    target_id: str
    reason: str
    cancelled_by: str


@dataclass(frozen=True, slots=True)
class SnipeTargetAmended(DomainEvent):
    """A person changed the amount or exit plan of a target not yet sent (both as they are now)."""

    target_id: str
    quote_amount: Decimal
    exit_plan: ExitPlan
    amended_by: str
    # The entry price cap as it is now (None: none). Events recorded before issue 14 decode with
    # None, which is what those targets had.
    max_entry_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RiskCheckFailed(DomainEvent):
    target_id: str
    reasons: tuple[str, ...]


# --- positions ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class PositionOpened(DomainEvent):
    position_id: str
    target_id: str
    symbol: str
    quote_asset: str
    entry_price: Decimal
    quantity: Decimal
    cost: Decimal
    entry_fee: Decimal
    entry_fee_asset: str
    quantity_scale: int
    exit_plan: ExitPlan
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class EntryFeeLearnt(DomainEvent):
    """The buy's fee, learnt after its fill was recorded with the fee unknown (PositionOpened with
    entry_fee_asset ""): the exchange's fee lookup had no rate budget then, and a fill is not held
    back for it. `fee` is in `fee_asset`: the base coin, the quote, or a third asset (MX).

    Its effect, worked out by the position as a fee known at the fill would have had it (issue 14):
    `quantity` coins the fee took from what the position holds (off its quantity and remaining);
    `cost` a quote fee added to what the position cost (and to its fees); `realised_pnl` what the fee
    takes from the P&L of a position already closed (minus a quote fee: no cost is held any more).
    The cost still held grows by `cost + realised_pnl`. Recorded at most once per position."""

    position_id: str
    fee: Decimal
    fee_asset: str
    quantity: Decimal
    cost: Decimal
    realised_pnl: Decimal


@dataclass(frozen=True, slots=True)
class ExitOrderSubmitted(DomainEvent):
    position_id: str
    client_order_id: str
    reason: str
    level: int | None
    quantity: Decimal
    trigger_price: Decimal
    # Who asked for it when a person did (a close by hand: their user id); "" for the exit plan's rules.
    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class ExitOrderFailed(DomainEvent):
    """The exchange refused an exit; the position stays as it was and may try again."""

    position_id: str
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PositionPeakRaised(DomainEvent):
    """The highest price seen since entry rose; a trailing stop follows it."""

    position_id: str
    peak_price: Decimal


@dataclass(frozen=True, slots=True)
class ExitFilled(DomainEvent):
    """Fields shared by every way coins leave a position: the exit fills, and DustWrittenOff."""

    position_id: str
    client_order_id: str
    level: int | None
    price: Decimal
    quantity: Decimal
    proceeds: Decimal
    fee: Decimal
    cost_released: Decimal
    realised_pnl: Decimal


@dataclass(frozen=True, slots=True)
class TakeProfitHit(ExitFilled):
    pass


@dataclass(frozen=True, slots=True)
class StopLossHit(ExitFilled):
    pass


@dataclass(frozen=True, slots=True)
class TrailingStopHit(ExitFilled):
    pass


@dataclass(frozen=True, slots=True)
class MaxHoldTimeReached(ExitFilled):
    pass


@dataclass(frozen=True, slots=True)
class EmergencyExitFilled(ExitFilled):
    pass


@dataclass(frozen=True, slots=True)
class ManualExitFilled(ExitFilled):
    """A person closed the position by hand (a market sell of what it held); `requested_by` is who."""

    requested_by: str = ""


@dataclass(frozen=True, slots=True)
class DustWrittenOff(ExitFilled):
    """What is left of a position cannot be sold: less than the pair's step or minimum, or not
    in the account at all (e.g. a buy fee taken from the coin). It leaves the position unsold:
    price and proceeds 0, no client order id, its cost released as a loss. `reason` says which."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class PositionClosed(DomainEvent):
    """Totals of a closed position, all in the quote asset.

    `total_cost` already includes an entry fee paid in the quote asset, and `total_fees`
    counts that fee too (with the exit fees): realised P&L = total_proceeds - exit fees -
    total_cost, not total_proceeds - total_fees - total_cost.
    """

    position_id: str
    total_cost: Decimal
    total_proceeds: Decimal
    total_fees: Decimal
    realised_pnl: Decimal


# --- safety ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EmergencyStopActivated(DomainEvent):
    """`automatic`: tripped by the safety monitor (a rule), not by a person. An automatic stop
    holds new buys and take-profits but lets protective exits sell; a person's holds everything."""

    scope: str
    reason: str
    activated_by: str
    automatic: bool = False


@dataclass(frozen=True, slots=True)
class EmergencyStopCleared(DomainEvent):
    scope: str
    cleared_by: str


# --- credentials (stream credentials-<user id>; the user is the envelope's) -----------

@dataclass(frozen=True, slots=True)
class CredentialsStored(DomainEvent):
    key_version: int
    api_key_hint: str


@dataclass(frozen=True, slots=True)
class CredentialsRotated(DomainEvent):
    key_version: int
    api_key_hint: str


@dataclass(frozen=True, slots=True)
class CredentialsDeleted(DomainEvent):
    """The user's credentials were forgotten: the key version and hint of the ones deleted
    (like CredentialsStored/Rotated, never any key material)."""

    key_version: int
    api_key_hint: str


# --- traders (per-user settings, stream trader-<user id>) -----------------------------

@dataclass(frozen=True, slots=True)
class TraderSettingsChanged(DomainEvent):
    """The whole of a trader's settings as they are from now on (not a diff)."""

    auto_snipe: bool
    quote_amount: Decimal
    quote_asset: str
    exit_strategy: str
    min_confidence: Decimal
    only_tickers: tuple[str, ...]
    skip_tickers: tuple[str, ...]
    risk: RiskProfile
    # The default entry price cap of new targets (None: market buys). Issue 14; older events: None.
    max_entry_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class NotificationSettingsChanged(DomainEvent):
    """The whole of a trader's notification settings from now on (domain/notifications.py):
    per kind on, off or silent; the channels, their secrets sealed; the daily summary's time."""

    modes: tuple[tuple[str, str], ...]
    channels: tuple[NotificationChannel, ...]
    daily_summary_at: str | None = None


@dataclass(frozen=True, slots=True)
class ExitStrategySaved(DomainEvent):
    """A trader's own exit plan, new or replacing the one of the same name."""

    plan: ExitPlan


@dataclass(frozen=True, slots=True)
class ExitStrategyDeleted(DomainEvent):
    name: str


# --- Telegram control (one stream for the deployment, telegram-links: domain/telegram.py) -

@dataclass(frozen=True, slots=True)
class TelegramLinkCodeIssued(DomainEvent):
    """A one-time code to link a chat, by its SHA-256 only (the code itself is never stored)."""

    user_id: str
    code_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TelegramChatLinked(DomainEvent):
    """The chat sent the user's code to the bot: its commands act for that user from now on."""

    user_id: str
    chat_id: int
    code_hash: str


@dataclass(frozen=True, slots=True)
class TelegramChatUnlinked(DomainEvent):
    user_id: str
    chat_id: int
    reason: str


# The stored event types, by name. Built from this module's classes (dataclass(slots=True)
# replaces each class, so __subclasses__ would also see the discarded originals).
EVENT_TYPES: dict[str, type[DomainEvent]] = {
    name: cls
    for name, cls in dict(globals()).items()
    if isinstance(cls, type) and issubclass(cls, DomainEvent) and cls not in (DomainEvent, ExitFilled)
}
