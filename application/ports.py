"""Ports: what the use cases need from the outside world, named by what they do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Protocol, runtime_checkable

from application.views import DailyPnl, PositionView, TargetView, TradeRecord
from domain.events import Recorded
from domain.exit_plans import ExitPlan
from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
from domain.values import ClientOrderId, Symbol, SymbolState

# --- event store ------------------------------------------------------------------------

class EventStore(Protocol):
    """Append-only trade history with optimistic concurrency per stream and a global order."""

    async def append(self, events: Sequence[Recorded]) -> list[Recorded]:
        """Append events, possibly of several streams, all or nothing.

        Each event carries its stream version; the first new event of a stream must be the
        stream's current version + 1, or ConcurrencyConflict is raised and nothing is written.
        Returns the events with their global `position` set, in append order.
        """
        ...

    async def load(self, stream_id: str) -> list[Recorded]:
        """Every event of one stream in version order; empty if the stream does not exist."""
        ...

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        """Events with position > `after`, in global order, at most `limit` of them."""
        ...

    async def read_user(self, user_id: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        """The events recorded with exactly this user id and position > `after`, in global order,
        at most `limit` of them: one user's audit trail, paged like `read_all`."""
        ...

    async def last_position(self) -> int:
        """The highest global position stored, 0 when empty."""
        ...


@runtime_checkable
class SnapshotStore(Protocol):
    """Snapshots of long streams, kept by an EventStore that has them (application/repository.py
    uses them when the store is one). A snapshot is a cache: a missing, old or unreadable one
    costs a full fold, never a wrong state."""

    snapshot_every: int  # take one each time a stream's version passes a multiple of this; 0: never

    async def load_snapshot(self, stream_id: str, shape: str) -> tuple[int, dict[str, object]] | None:
        """The newest snapshot of the stream as (version, state), if it has one of this shape
        (Aggregate.snapshot_shape) that can be read back; else None."""
        ...

    async def save_snapshot(self, stream_id: str, version: int, shape: str, state: dict[str, object]) -> None:
        """Keep the state at `version` unless a snapshot at that version or later is kept already.
        Raises TypeError for a state it cannot store exactly."""
        ...

    async def load_from(self, stream_id: str, version: int) -> list[Recorded]:
        """The stream's events from `version` on (that one included), in version order."""
        ...


# --- read models ------------------------------------------------------------------------

class ReadModels(Protocol):
    """The trade history's read side, per user: what the API shows without folding history.

    Views are projections of the event store that follow it by global position; they may lag
    it by the events recorded since `checkpoint()`. The views equal those of the in-memory
    trade book (application/trade_book.py) folded over the same events, and come in the
    book's order: targets and positions in the order they were first recorded.
    """

    async def positions(self, user_id: str, open_only: bool = False) -> list[PositionView]:
        """The user's positions; with `open_only`, those not closed (open or partially exited)."""
        ...

    async def targets(self, user_id: str, statuses: Collection[str] | None = None) -> list[TargetView]:
        """The user's snipe targets, optionally only those in one of `statuses`."""
        ...

    async def daily_pnl(self, user_id: str, day_from: date, day_to: date) -> list[DailyPnl]:
        """Realised P&L per day, both days included, oldest first; days without exits are left out."""
        ...

    async def trade_history(
        self, user_id: str, limit: int = 100, before_position: int | None = None,
    ) -> list[TradeRecord]:
        """The user's fills (entries and exits), newest first, at most `limit`; page on with
        `before_position` = the `position` of the last record of the previous page."""
        ...

    async def halted(self, user_id: str) -> str | None:
        """Why trading is halted for this user (a global stop first), or None."""
        ...

    async def checkpoint(self) -> int:
        """The global position of the last event the views include (0: none yet)."""
        ...


# --- time -------------------------------------------------------------------------------

class Clock(Protocol):
    """Time as the application sees it. The demo and tests pass a controllable clock."""

    def now(self) -> datetime:
        """Aware UTC datetime."""
        ...

    async def sleep(self, delay: timedelta) -> None: ...

    async def sleep_until(self, moment: datetime) -> None: ...


class WallClock(Clock, Protocol):
    """The real time of day, whatever clock the market runs on (a replay's is accelerated and
    starts on the scenario's day). Heartbeats, their deadlines and staleness are read on it:
    a worker and whoever reads its heartbeats (`sniper agents`, the API) share no other clock."""


# --- listings ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CalendarEntry:
    coin_id: str
    ticker: str
    full_name: str
    symbol: Symbol
    launch_at: datetime


@dataclass(frozen=True, slots=True)
class SymbolStateReport:
    coin_id: str
    ticker: str
    state: SymbolState


class ListingFeed(Protocol):
    """MEXC's new-coin calendar and per-symbol web states."""

    async def calendar(self) -> list[CalendarEntry]: ...

    async def symbol_states(self) -> list[SymbolStateReport]: ...


# --- market data -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SymbolRules:
    symbol: Symbol
    price_scale: int
    quantity_scale: int
    min_notional: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal("0.0005")


@dataclass(frozen=True, slots=True)
class PriceTick:
    symbol: Symbol
    price: Decimal
    at: datetime


class MarketData(Protocol):
    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        """Precision and fees; raises NotFound for a symbol the exchange does not list."""
        ...

    async def last_price(self, symbol: Symbol) -> Decimal | None: ...


# --- recorded listings (backtests) -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordedPrice:
    at: datetime
    price: Decimal


@dataclass(frozen=True, slots=True)
class ListingRecording:
    """One listing's price path after launch, as recorded (or synthesised) for backtests.
    `source` names where it came from (a file), for messages."""

    source: str
    symbol: Symbol
    launch_at: datetime
    quote_amount: Decimal
    quantity_scale: int
    prices: tuple[RecordedPrice, ...]


class RecordingSource(Protocol):
    def recordings(self) -> Sequence[ListingRecording]:
        """Every recording, each checked whole: prices positive and in time order, none before launch.
        Raises ConfigurationError, in one line naming the recording and the problem."""
        ...


# --- trading -----------------------------------------------------------------------------

class OrderSide(Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(Enum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PARTIALLY_CANCELED = "PARTIALLY_CANCELED"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.PARTIALLY_CANCELED)


@dataclass(frozen=True, slots=True)
class OrderReport:
    """An order as the exchange reports it. Amounts are what actually executed."""

    symbol: Symbol
    client_order_id: ClientOrderId
    exchange_order_id: str
    side: OrderSide
    status: OrderStatus
    executed_quantity: Decimal
    executed_quote: Decimal
    average_price: Decimal
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    created_at: datetime | None = None


class ClockOffset(timedelta):
    """What `ExchangeTrading.prepare` may return: the offset (a timedelta, the middle of what the
    samples allow) with how sure it is. `spread`: the true offset lies within this of it (MEXC's
    serverTime has 1 ms resolution, so a lone sample is only good to a millisecond). `latency`:
    the time from a send to the exchange handling it (half the best round trip)."""

    spread: timedelta
    latency: timedelta

    def __new__(cls, offset: timedelta, spread: timedelta, latency: timedelta) -> ClockOffset:
        made = super().__new__(cls, microseconds=offset // timedelta(microseconds=1))
        made.spread, made.latency = spread, latency
        return made


class LaunchRoster(Protocol):
    """Who sends into one launch (a pair's open) from this IP: the snipe executors of every worker
    process join it before the launch and learn how many share MEXC's rate budget for it."""

    async def join(self, launch: str, member: str, ttl: timedelta) -> int:
        """Add `member` to `launch` (joining again changes nothing) and return how many members it
        has; a roster is forgotten `ttl` after its last join."""
        ...


class ExchangeTrading(Protocol):
    """Placing and resolving orders. Errors come as application.errors.ExchangeError kinds."""

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        """Warm the connection and sync the clock ahead of a timed order (may be a no-op).
        Returns how far the exchange's clock is ahead of ours (negative: behind), as measured
        now; None when there is no exchange clock to follow (paper fills)."""
        ...

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport: ...

    async def place_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        """An IMMEDIATE_OR_CANCEL limit buy at `max_price` for `quote_amount`: quantity = amount /
        price, rounded down to the pair's step. What can fill at or below the price fills at once,
        the rest is cancelled (CANCELED with nothing executed, or PARTIALLY_CANCELED). Refused
        (OrderRefused 30002) before sending when that is below the pair's minimum, once its rules
        are known."""
        ...

    async def place_market_sell(
        self, symbol: Symbol, quantity: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport: ...

    async def query_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        """None when the exchange knows no order with that client id."""
        ...

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None: ...

    async def open_orders(self, symbol: Symbol | None = None) -> list[OrderReport]: ...


@runtime_checkable
class AccountBalances(Protocol):
    """What an exchange account holds, where the exchange can tell (MEXC can; paper fills cannot:
    they hold exactly what they filled). Reached on the ExchangeTrading an order went to."""

    async def free_balance(self, asset: str) -> Decimal:
        """The free (not locked in open orders) amount of `asset`; 0 when the account holds none."""
        ...


@runtime_checkable
class OrderFees(Protocol):
    """An order's fee, learnt after its fill (optional: MEXC has it, paper fills report theirs at once).

    MEXC's GET order carries no fee: it is read from the order's trades, a call with a per-IP rate
    budget that many traders filling at one launch can spend. A buy's fill is not held back for it:
    its report says fee 0, fee_asset "" when the fee was not known or obtainable without waiting,
    and the fee is learnt after, through this. Reached on the ExchangeTrading the order went to."""

    async def order_fee(
        self, symbol: Symbol, exchange_order_id: str, side: OrderSide, executed_quantity: Decimal, *, wait: bool = True,
    ) -> tuple[Decimal, str] | None:
        """The order's fee as (amount, asset), the asset always named (a free fill: 0 in the quote).
        `wait`: wait for rate budget as background work does (bounded, about one rate window);
        False: only when budget is free now. None: not learnt now (no budget in time, the trades not
        showing the whole fill yet, the exchange's error): ask again later."""
        ...


@runtime_checkable
class PairRules(Protocol):
    """The pair's trading rules as the exchange states them now (MEXC: exchangeInfo, cached by the
    adapter), where the exchange an order goes to can tell: MexcExchange and the replay's paper
    exchange can, the paper broker cannot. An exit rounds with them; a step recorded at the fill
    may be a guess (the pair was missing from the symbol list then)."""

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        """Raises NotFound for a pair the exchange does not list (yet), ExchangeError when it cannot tell."""
        ...


# --- users -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TraderSettings:
    """What one user wants the sniper to do for them."""

    user_id: str
    auto_snipe: bool = True
    quote_amount: Decimal = Decimal("10")
    quote_asset: str = "USDT"
    exit_strategy: str = "balanced"
    custom_exit_plans: dict[str, ExitPlan] = field(default_factory=dict)
    risk: RiskProfile = DEFAULT_RISK_PROFILE
    min_confidence: Decimal = Decimal("0.80")
    only_tickers: frozenset[str] = frozenset()
    skip_tickers: frozenset[str] = frozenset()
    max_entry_price: Decimal | None = None  # the default entry price cap of new targets (None: market buys)

    def wants(self, ticker: str, quote_asset: str) -> bool:
        if not self.auto_snipe or quote_asset != self.quote_asset:
            return False
        if self.only_tickers and ticker not in self.only_tickers:
            return False
        return ticker not in self.skip_tickers


class TraderDirectory(Protocol):
    async def auto_snipers(self) -> list[TraderSettings]:
        """Every user with auto-snipe on."""
        ...

    async def settings_for(self, user_id: str) -> TraderSettings:
        """Raises NotFound for an unknown user."""
        ...


# --- coordination ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ScheduledJob:
    kind: str
    key: str
    run_at: datetime


class Scheduler(Protocol):
    """Durable timed jobs. Scheduling the same (kind, key) twice keeps one job."""

    async def schedule(self, job: ScheduledJob) -> None: ...

    async def cancel(self, kind: str, key: str) -> None: ...

    async def ensure(self, job: ScheduledJob) -> bool:
        """Schedule `job` again if the scheduler lost it (its storage lost its data), never while
        it holds a job for (kind, key), waiting, running or finished; True when scheduled again.
        Called again and again: a scheduler may need more than one look to tell a lost job."""
        ...


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease on `key`. Always truthy, so `if not held:` reads as "someone else has it".

    `token` is a fencing token: it strictly increases with each new holder of the same key,
    so whatever the holder writes to can refuse a write stamped with an older token (a
    holder that paused past its ttl and does not know it lost the lease).

    `first`: the lock service had no record of any earlier holder of `key` when it gave this
    lease (its fence started here). For a key that was held before, that means the service
    lost its data (a Redis restart without persistence, a failover, a flush): an earlier
    holder may still believe in its lease, for up to one ttl after its last renewal.
    `nonce` tells this holder from one that got the same token after such a loss.

    `epoch` names the fence counter that gave `token` (a random id, new each time the counter
    starts again), and `epoch_started_at` is when that counter started (by this process's clock;
    None when not known). A holder that finds work recorded under another epoch knows the counter
    restarted since: an earlier holder may then believe in its lease until one ttl after
    `epoch_started_at`, however many holders came between. Leases compare by key, token, first
    and nonce: the epoch describes the counter, not the holder.
    """

    key: str
    token: int
    first: bool = False
    nonce: str = ""
    epoch: str = field(default="", compare=False)
    epoch_started_at: datetime | None = field(default=None, compare=False)


class LockService(Protocol):
    """Exclusive, expiring leases: one executor per snipe, even across workers."""

    def lease(self, key: str, ttl: timedelta) -> AbstractAsyncContextManager[Lease | None]:
        """Enter to try to hold `key` for `ttl` (> 0).

        Yields a Lease when held, released on exit (only if it is still ours: a holder
        whose lease lapsed and was taken over leaves its successor alone); yields None
        when another holds it. Never waits for the key.
        """
        ...

    async def renew(self, lease: Lease, ttl: timedelta) -> bool:
        """Hold `lease` for `ttl` from now. False (and nothing changes) when it lapsed or has another holder."""
        ...


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: timedelta | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...


# --- rate counters -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CounterResult:
    """`count`: hits counted in the window, this one included when allowed.
    `retry_after`: zero when allowed, else how long until a hit would be allowed."""

    allowed: bool
    count: int
    retry_after: timedelta


class RequestCounter(Protocol):
    """Per-key (e.g. per-user) request limits over a sliding window."""

    async def hit(self, key: str, window: timedelta, limit: int) -> CounterResult:
        """Count one request against `key`: allowed while fewer than `limit` (>= 1) hits were
        allowed in the last `window` (> 0). A refused hit is not counted, so a caller that
        keeps knocking is let in as soon as the oldest counted hit leaves the window."""
        ...


# --- live event fan-out ------------------------------------------------------------------

class EventFanout(Protocol):
    """Recorded events pushed to a user's live views (at most once; the event store is the truth).

    A subscriber gets the events of its user published after its subscription was entered,
    in publish order. A subscriber that falls too far behind, or whose connection broke,
    is dropped: its iterator raises SubscriptionLost after what it had received, and it
    catches up from the event store by global position before subscribing again.
    """

    async def publish(self, user_id: str, recorded_event_json: bytes) -> None:
        """Hand the event to the current subscribers of `user_id`; never waits for them to read it."""
        ...

    def subscribe(self, user_id: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Enter to subscribe (subscribed once entered); iterate for the events; exit to unsubscribe."""
        ...


# --- exchange accounts ---------------------------------------------------------------------

@runtime_checkable
class PresignedSends(Protocol):
    """An ExchangeTrading that can make a buy's first request ahead of its send (optional)."""

    def arm_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal | None, client_order_id: ClientOrderId,
        send_at: datetime,
    ) -> None:
        """Build and sign now the request of the next `place_market_buy` (`max_price` None) or
        `place_capped_buy` of this order, stamped for `send_at` (our clock), so that send only
        writes it; later sends are signed afresh. Raises OrderRefused for an order outside the
        pair's rules (its send says so again); may raise ExchangeError."""
        ...


class ExchangeAccounts(Protocol):
    """Which account an order goes to: a paper target's to paper fills, a live target's to a
    real exchange account. Never a real order for a paper target."""

    async def trading_for(self, user_id: str, live: bool) -> ExchangeTrading:
        """Raises AccountUnavailable when no account can take it (live on a paper-only worker)."""
        ...


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """What an account holds of one asset: `free` to trade, `locked` in open orders."""

    asset: str
    free: Decimal
    locked: Decimal


class LiveBalances(Protocol):
    """A user's balances on their real exchange account (MEXC, with the keys they stored)."""

    async def balances(self, user_id: str) -> list[AssetBalance]:
        """Every asset held (free or locked above zero). Raises AccountUnavailable when the user
        has no keys to read it with, ExchangeError when the exchange cannot be asked."""
        ...


# --- agent status --------------------------------------------------------------------------

# A heartbeat without a deadline from its supervisor (an older writer) is stale at this age.
AGENT_STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """One worker agent's last heartbeat, as the supervisor reported it. Its times are wall
    time (see WallClock), whatever clock the worker trades on; so is the `now` it is judged at."""

    name: str
    healthy: bool
    last_beat_at: datetime
    restarts: int = 0
    detail: str = ""
    worker_id: str = ""
    # When a next heartbeat is due at the latest; a status older than this is stale (its
    # worker stopped or hangs). None: not known.
    stale_after: datetime | None = None

    def is_stale(self, now: datetime) -> bool:
        if self.stale_after is not None:
            return now > self.stale_after
        return now - self.last_beat_at > AGENT_STALE_AFTER

    def is_current(self, now: datetime) -> bool:
        return self.healthy and not self.is_stale(now)


class AgentStatusBoard(Protocol):
    """Where worker supervisors publish their agents' heartbeats and the API reads them."""

    async def beat(self, status: AgentStatus) -> None:
        """Publish an agent's current status (replaces its previous one)."""
        ...

    async def statuses(self) -> list[AgentStatus]:
        """The latest status of every agent known, by name (and worker)."""
        ...


# --- live prices ---------------------------------------------------------------------------

class PriceStream(Protocol):
    """Live prices of chosen symbols, pushed by the exchange (MEXC's WebSocket market streams)."""

    async def follow(self, symbols: Collection[Symbol]) -> None:
        """Follow exactly these symbols from now on (subscribe the new, drop the others)."""
        ...

    async def drain(self, wait: timedelta) -> list[PriceTick]:
        """The ticks received since the last call, oldest first; waits up to `wait` for a first one."""
        ...
