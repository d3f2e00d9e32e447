"""What the HTTP API reads and writes: msgspec structs, money as decimal strings.

Amounts travel as strings (`"10.5"`), never as JSON numbers, so no float ever touches them;
the pattern below is what the OpenAPI document promises and what requests are checked against.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal, get_args

import msgspec
from msgspec import Meta, Struct

from application.credentials import API_KEY_LENGTHS, SECRET_KEY_LENGTHS, CredentialCheckResult, CredentialSummary
from application.notifications import OutboxEntry
from application.ports import AgentStatus
from application.use_cases.positions import PositionClosure
from application.use_cases.queries import AccountBalancesView, PricedPosition, TraderStatus, UserPortfolio
from application.use_cases.safety import StopState
from application.use_cases.strategies import ExitStrategy
from application.views import ListingView, PositionView, TargetView, TradeRecord
from domain.events import NotificationSettingsChanged, Recorded
from domain.exit_plans import ExitPlan, TakeProfitLevel
from domain.notifications import NotificationKind, NotificationPreferences
from domain.risk import RiskProfile
from domain.trader import TradingPreferences

DECIMAL_PATTERN = r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$"
Money = Annotated[str, Meta(pattern=DECIMAL_PATTERN, description="a decimal number as a string, e.g. \"10.5\"")]
PositiveMoney = Annotated[
    str, Meta(pattern=r"^[0-9]{1,20}(\.[0-9]{1,18})?$", description="a non-negative decimal as a string")
]
# An entry price cap: a positive decimal (the domain refuses 0) of at most 20 + 18 digits.
EntryPriceCap = Annotated[str, Meta(
    pattern=r"^[0-9]{1,20}(\.[0-9]{1,18})?$",
    description="the highest price the entry may pay, a positive decimal as a string, e.g. \"0.0123\": the "
                "snipe sends an IMMEDIATE_OR_CANCEL limit buy at it instead of a market buy",
)]
Ticker = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,20}$")]
Asset = Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{1,16}$")]
StrategyName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Reason = Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]

# The dates and times a client may send: years 2000 to 2200 as written. Far wider than any listing or
# trade history, and far enough from datetime's own limits (years 1 and 9999) that no date arithmetic
# on them can overflow. The document states it as a pattern on the year, the server checks the same.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2200
SUPPORTED_RANGE = f"{EARLIEST_YEAR}-01-01 to {LATEST_YEAR}-12-31"
YEAR_PATTERN = r"^(2[01][0-9]{2}|2200)-"
_IN_RANGE = f"from {SUPPORTED_RANGE}"
Moment = Annotated[datetime, Meta(tz=True, extra_json_schema={
    "description": f"an ISO 8601 time with its UTC offset, {_IN_RANGE}", "pattern": YEAR_PATTERN})]


def out_of_range(value: date) -> str | None:
    """Why `value` (a date or a datetime) is refused, or None when it is within the supported range."""
    if EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        return None
    return f"must be {_IN_RANGE}, got {value.isoformat()}"


def money(value: Decimal) -> str:
    """A Decimal as the API writes it: plain notation, never an exponent."""
    return format(value, "f")


def parse_money(value: str) -> Decimal:
    return Decimal(value)


# --- errors --------------------------------------------------------------------------------

class Problem(Struct):
    """Every error answer, an RFC 9457 problem (`application/problem+json`). `type` is about:blank: a
    problem means what its status means. `detail` says what is wrong (never internals); `error` (a
    stable code) and `error_id` (the id a 5xx's traceback is logged under) are extension members."""

    type: Annotated[str, Meta(description="The problem type: about:blank, the status says it all")]
    title: Annotated[str, Meta(description="The status's reason phrase")]
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: str
    error: Annotated[str, Meta(description="A stable code, one per status: not_found, conflict, ...")]
    error_id: str | None = None


# --- identity ------------------------------------------------------------------------------

class Me(Struct):
    user_id: str
    email: str | None
    development: bool


# --- credentials ---------------------------------------------------------------------------

# What application.credentials.validate_credentials accepts: printable ASCII, no whitespace, a sane length.
ApiKey = Annotated[str, Meta(min_length=API_KEY_LENGTHS[0], max_length=API_KEY_LENGTHS[1], pattern=r"^[!-~]+$")]
SecretKey = Annotated[
    str, Meta(min_length=SECRET_KEY_LENGTHS[0], max_length=SECRET_KEY_LENGTHS[1], pattern=r"^[!-~]+$")
]


class CredentialsIn(Struct, forbid_unknown_fields=True):
    api_key: ApiKey
    secret_key: SecretKey


class CredentialsTestIn(Struct, forbid_unknown_fields=True):
    """Test these credentials before storing them; omit both to test the stored ones."""

    # Both or neither (the route refuses one alone): each absent or null, or both strings.
    __json_schema_extra__: ClassVar[dict[str, object]] = {"anyOf": [
        {"properties": {"api_key": {"type": "null"}, "secret_key": {"type": "null"}}},
        {"required": ["api_key", "secret_key"],
         "properties": {"api_key": {"type": "string"}, "secret_key": {"type": "string"}}},
    ]}

    api_key: ApiKey | None = None
    secret_key: SecretKey | None = None


class CredentialsOut(Struct):
    api_key_hint: str
    key_version: int
    stored_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: CredentialSummary) -> CredentialsOut:
        return cls(s.api_key_hint, s.key_version, s.stored_at, s.updated_at)


class CredentialsTestOut(Struct):
    ok: bool
    can_trade: bool
    detail: str

    @classmethod
    def of(cls, r: CredentialCheckResult) -> CredentialsTestOut:
        return cls(r.ok, r.can_trade, r.detail)


# --- settings ------------------------------------------------------------------------------

class RiskProfileBody(Struct, forbid_unknown_fields=True):
    max_quote_per_snipe: PositiveMoney
    max_concurrent_positions: Annotated[int, Meta(ge=0, le=1000)]
    max_daily_loss: PositiveMoney
    max_total_exposure: PositiveMoney
    allowed_quote_assets: Annotated[list[Asset], Meta(min_length=1, max_length=20)]
    live: bool = False

    @classmethod
    def of(cls, r: RiskProfile) -> RiskProfileBody:
        return cls(
            money(r.max_quote_per_snipe), r.max_concurrent_positions, money(r.max_daily_loss),
            money(r.max_total_exposure), list(r.allowed_quote_assets), r.live,
        )

    def to_domain(self) -> RiskProfile:
        return RiskProfile(
            max_quote_per_snipe=parse_money(self.max_quote_per_snipe),
            max_concurrent_positions=self.max_concurrent_positions,
            max_daily_loss=parse_money(self.max_daily_loss),
            max_total_exposure=parse_money(self.max_total_exposure),
            allowed_quote_assets=tuple(a.upper() for a in self.allowed_quote_assets),
            live=self.live,
        )


class SettingsBody(Struct, forbid_unknown_fields=True):
    """A trader's settings as a whole (PUT replaces them)."""

    auto_snipe: bool
    quote_amount: PositiveMoney
    quote_asset: Asset
    exit_strategy: Annotated[str, Meta(min_length=1, max_length=40)]
    min_confidence: PositiveMoney
    risk: RiskProfileBody
    only_tickers: Annotated[list[Ticker], Meta(max_length=200)] = []
    skip_tickers: Annotated[list[Ticker], Meta(max_length=200)] = []
    # The entry price cap new targets take unless they name their own; null: market buys.
    max_entry_price: EntryPriceCap | None = None

    @classmethod
    def of(cls, p: TradingPreferences) -> SettingsBody:
        return cls(
            p.auto_snipe, money(p.quote_amount), p.quote_asset, p.exit_strategy, money(p.min_confidence),
            RiskProfileBody.of(p.risk), list(p.only_tickers), list(p.skip_tickers),
            money(p.max_entry_price) if p.max_entry_price is not None else None,
        )

    def to_domain(self) -> TradingPreferences:
        return TradingPreferences(
            auto_snipe=self.auto_snipe,
            quote_amount=parse_money(self.quote_amount),
            quote_asset=self.quote_asset,
            exit_strategy=self.exit_strategy,
            min_confidence=parse_money(self.min_confidence),
            only_tickers=tuple(self.only_tickers),
            skip_tickers=tuple(self.skip_tickers),
            risk=self.risk.to_domain(),
            max_entry_price=parse_money(self.max_entry_price) if self.max_entry_price is not None else None,
        )


# --- exit strategies -------------------------------------------------------------------------

class TakeProfitBody(Struct, forbid_unknown_fields=True):
    gain_percent: PositiveMoney
    sell_percent: PositiveMoney


class ExitPlanBody(Struct, forbid_unknown_fields=True):
    """A plan of the trader's own; its name is the path's."""

    take_profits: Annotated[list[TakeProfitBody], Meta(max_length=10)]
    stop_loss_percent: PositiveMoney
    trailing_stop_percent: PositiveMoney | None = None
    max_hold_seconds: Annotated[int, Meta(ge=1, le=365 * 24 * 3600)] | None = None

    def to_domain(self, name: str) -> ExitPlan:
        return ExitPlan(
            name=name,
            take_profits=tuple(
                TakeProfitLevel(parse_money(t.gain_percent), parse_money(t.sell_percent)) for t in self.take_profits
            ),
            stop_loss_percent=parse_money(self.stop_loss_percent),
            trailing_stop_percent=(
                parse_money(self.trailing_stop_percent) if self.trailing_stop_percent is not None else None
            ),
            max_hold_seconds=self.max_hold_seconds,
        )


class ExitStrategyOut(Struct):
    name: str
    preset: bool
    default: bool
    take_profits: list[TakeProfitBody]
    stop_loss_percent: str
    trailing_stop_percent: str | None
    max_hold_seconds: int | None

    @classmethod
    def of(cls, s: ExitStrategy) -> ExitStrategyOut:
        p = s.plan
        return cls(
            p.name, s.preset, s.default,
            [TakeProfitBody(money(t.gain_percent), money(t.sell_percent)) for t in p.take_profits],
            money(p.stop_loss_percent),
            money(p.trailing_stop_percent) if p.trailing_stop_percent is not None else None,
            p.max_hold_seconds,
        )


# --- listings --------------------------------------------------------------------------------

class ListingOut(Struct):
    coin_id: str
    ticker: str
    symbol: str
    launch_at: datetime
    ready: bool

    @classmethod
    def of(cls, v: ListingView) -> ListingOut:
        return cls(v.coin_id, v.ticker, v.symbol, v.launch_at, v.ready)


# --- targets ---------------------------------------------------------------------------------

TargetStatusName = Literal["watching", "ready", "scheduled", "executing", "filled", "failed", "cancelled", "expired"]


class TargetIn(Struct, forbid_unknown_fields=True):
    """A manual snipe: recorded ready and scheduled at once, live or paper as the trader's risk
    profile says; refused (422) when the risk limits would refuse it, and checked again at launch."""

    symbol: Annotated[str, Meta(pattern=r"^[A-Za-z0-9]{2,20}$")]
    launch_at: Moment
    quote_amount: PositiveMoney
    exit_strategy: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    quote_asset: Asset = "USDT"
    max_entry_price: EntryPriceCap | None = None  # null: the settings' default cap (none: a market buy)

    def __post_init__(self) -> None:
        if (problem := out_of_range(self.launch_at)) is not None:
            raise ValueError(f"launch_at {problem}")


class TargetPatch(Struct, forbid_unknown_fields=True):
    # A cap to set and the cap cleared at once is refused (400).
    __json_schema_extra__: ClassVar[dict[str, object]] = {"not": {
        "required": ["max_entry_price", "clear_max_entry_price"],
        "properties": {"max_entry_price": {"type": "string"}, "clear_max_entry_price": {"const": True}},
    }}

    quote_amount: PositiveMoney | None = None
    exit_strategy: Annotated[str, Meta(min_length=1, max_length=40)] | None = None
    max_entry_price: EntryPriceCap | None = None  # null: unchanged
    clear_max_entry_price: bool = False  # true: drop the cap (a market buy); not with max_entry_price

    def __post_init__(self) -> None:
        if self.clear_max_entry_price and self.max_entry_price is not None:
            raise ValueError("give max_entry_price or clear_max_entry_price, not both")


class CancelIn(Struct, forbid_unknown_fields=True):
    reason: Reason = "cancelled by the trader"


class TargetOut(Struct):
    target_id: str
    coin_id: str
    symbol: str
    launch_at: datetime
    quote_amount: str
    exit_strategy: str
    status: str
    confidence: str
    execute_at: datetime | None
    reason: str | None
    live: bool  # real money on MEXC; false: paper. As the trader's risk profile said when it was created
    # The entry's price cap (an IMMEDIATE_OR_CANCEL limit buy at it); null: a market buy.
    max_entry_price: str | None = None

    @classmethod
    def of(cls, v: TargetView) -> TargetOut:
        return cls(
            v.target_id, v.coin_id, v.symbol, v.launch_at, money(v.quote_amount), v.exit_strategy, v.status,
            money(v.confidence), v.execute_at, v.reason, v.live,
            money(v.max_entry_price) if v.max_entry_price is not None else None,
        )


# --- positions and portfolio -----------------------------------------------------------------

class PositionOut(Struct):
    position_id: str
    target_id: str
    symbol: str
    quote_asset: str
    status: str
    entry_price: str
    quantity: str
    remaining: str
    cost: str
    remaining_cost: str
    proceeds: str
    fees: str
    realised_pnl: str
    last_exit: str | None
    exits: list[str]
    opened_at: datetime | None
    closed_at: datetime | None
    # An open position at the market's last price (the portfolio, the status); null: not priced.
    current_price: str | None = None
    unrealised_pnl: str | None = None

    @classmethod
    def of(cls, p: PositionView) -> PositionOut:
        return cls(
            p.position_id, p.target_id, p.symbol, p.quote_asset, p.status, money(p.entry_price), money(p.quantity),
            money(p.remaining), money(p.cost), money(p.remaining_cost), money(p.proceeds), money(p.fees),
            money(p.realised_pnl), p.last_exit, list(p.exits), p.opened_at, p.closed_at,
        )

    @classmethod
    def priced(cls, p: PricedPosition) -> PositionOut:
        out = cls.of(p.position)
        return msgspec.structs.replace(out, current_price=_money_or_none(p.current_price),
                                       unrealised_pnl=_money_or_none(p.unrealised_pnl))


class PortfolioOut(Struct):
    positions: list[PositionOut]
    open_positions: int
    invested: str
    open_exposure: str
    realised_pnl: str
    fees: str
    halted: str | None
    as_of_position: int
    # Of the open positions at the current price (each position says its own); null: none priced.
    unrealised_pnl: str | None = None

    @classmethod
    def of(cls, p: UserPortfolio) -> PortfolioOut:
        return cls(
            [PositionOut.of(x) for x in p.positions], p.open_positions, money(p.invested), money(p.open_exposure),
            money(p.realised_pnl), money(p.fees), p.halted, p.as_of_position,
        )


class TradeOut(Struct):
    position: int
    occurred_at: datetime
    position_id: str
    target_id: str
    symbol: str
    side: str
    event_type: str
    price: str
    quantity: str
    quote_amount: str
    fee: str
    fee_asset: str
    realised_pnl: str
    client_order_id: str | None

    @classmethod
    def of(cls, t: TradeRecord) -> TradeOut:
        return cls(
            t.position, t.occurred_at, t.position_id, t.target_id, t.symbol, t.side, t.event_type, money(t.price),
            money(t.quantity), money(t.quote_amount), money(t.fee), t.fee_asset, money(t.realised_pnl),
            t.client_order_id,
        )


class DailyPnlOut(Struct):
    day: str
    realised_pnl: str


# --- the trade history -----------------------------------------------------------------------

_event_encoder = msgspec.json.Encoder(decimal_format="string")


class EventOut(Struct):
    """One recorded event: the envelope, and the event's own fields under `data`."""

    position: int
    stream_id: str
    version: int
    occurred_at: datetime
    correlation_id: str
    type: str
    data: dict[str, object]

    @classmethod
    def of(cls, r: Recorded) -> EventOut:
        data = msgspec.json.decode(_event_encoder.encode(r.event))
        if isinstance(r.event, NotificationSettingsChanged):
            # A channel's secret, even sealed, is never echoed (the audit trail, the live stream):
            # whether one is set, as GET /api/v1/notifications says.
            for channel in data.get("channels", []):
                channel["secret_set"] = bool(channel.pop("secret", None))
        return cls(r.position or 0, r.stream_id, r.version, r.occurred_at, r.correlation_id, r.event.type_name, data)


def event_json(r: Recorded) -> bytes:
    """The bytes the live stream sends for one event (the same shape as EventOut)."""
    return _event_encoder.encode(EventOut.of(r))


# --- emergency stop, agents, health ------------------------------------------------------------

class StopIn(Struct, forbid_unknown_fields=True):
    reason: Reason


class StopOut(Struct):
    """`note`: set when the request changed nothing (a stop pressed again, or none to clear)."""

    active: bool
    reason: str | None
    cancelled_orders: list[str] = []
    cancel_failures: list[str] = []
    active_since: datetime | None = None
    note: str | None = None


class AgentOut(Struct):
    name: str
    worker_id: str
    healthy: bool
    last_beat_at: datetime
    stale: bool
    restarts: int
    detail: str

    @classmethod
    def of(cls, s: AgentStatus, stale: bool) -> AgentOut:
        return cls(s.name, s.worker_id, s.healthy and not stale, s.last_beat_at, stale, s.restarts, s.detail)


class HealthOut(Struct):
    status: Literal["ok"]


class ReadinessCheck(Struct):
    name: str
    ok: bool
    detail: str


class ReadinessOut(Struct):
    ready: bool
    checks: list[ReadinessCheck]


class TelegramLinkOut(Struct):
    """A one-time code: send `/link <code>` to `bot` in Telegram before `expires_at` (single use)."""

    code: str
    expires_at: datetime
    bot: str | None


# --- the cockpit (issue 15): a close by hand, balances, the status --------------------------------

def plain(value: Decimal) -> str:
    """A computed amount (a price, an unrealised P&L, a balance) without trailing zeros: "1.99", not "1.99000000"."""
    return money(value.normalize()) if value != 0 else "0"


def _money_or_none(value: Decimal | None) -> str | None:
    return plain(value) if value is not None else None


def priced_portfolio(out: PortfolioOut, priced: list[PricedPosition], unrealised: Decimal | None) -> PortfolioOut:
    """The portfolio with its open positions at the current price (`out` is shared: copied, never changed)."""
    by_id = {p.position.position_id: p for p in priced}
    positions = [
        msgspec.structs.replace(x, current_price=_money_or_none(by_id[x.position_id].current_price),
                                unrealised_pnl=_money_or_none(by_id[x.position_id].unrealised_pnl))
        if x.position_id in by_id else x
        for x in out.positions
    ]
    return msgspec.structs.replace(out, positions=positions, unrealised_pnl=_money_or_none(unrealised))


CloseStateName = Literal["closed", "closing", "partially exited", "open"]
# PositionClosure.state is a str ("closing", or the position's status): its names as the API's Literal.
_CLOSE_STATES: dict[str, CloseStateName] = {name: name for name in get_args(CloseStateName)}


class PositionCloseOut(Struct):
    """What a close by hand did. `state`: closed; closing (the sell is out, its outcome not known
    yet: ask again); partially exited (part of it sold). `sold` and `price`: what closes by hand
    sold of the position (quantity, average price). `already`: it was closing or closed before
    this request, and nothing was sent."""

    state: CloseStateName
    sold: str
    price: str | None
    realised_pnl: str
    already: bool
    detail: str
    position: PositionOut

    @classmethod
    def of(cls, c: PositionClosure) -> PositionCloseOut:
        if c.state not in _CLOSE_STATES:
            raise ValueError(f"a close by hand in a state the API does not name: {c.state!r}")
        return cls(_CLOSE_STATES[c.state], money(c.sold), _money_or_none(c.price), money(c.realised_pnl), c.already,
                   c.detail, PositionOut.of(c.position))


class BalanceOut(Struct):
    asset: str
    free: str
    locked: str


class BalancesOut(Struct):
    """`mode`: live (read from MEXC with your keys) or paper (the paper account: SNIPER_PAPER_WALLET
    plus the paper trades' results, and the coins of open paper positions)."""

    mode: Literal["paper", "live"]
    balances: list[BalanceOut]
    as_of: datetime

    @classmethod
    def of(cls, b: AccountBalancesView) -> BalancesOut:
        mode: Literal["paper", "live"] = "live" if b.mode == "live" else "paper"
        return cls(mode, [BalanceOut(x.asset, plain(x.free), plain(x.locked)) for x in b.balances], b.as_of)


class StopStateOut(Struct):
    scope: str
    reason: str
    by: str
    since: datetime | None
    automatic: bool
    text: str  # one line: "emergency stop pressed by X at T: reason"

    @classmethod
    def of(cls, s: StopState) -> StopStateOut:
        return cls(s.scope, s.reason, s.by, s.since, s.automatic, s.describe())


class StatusOut(Struct):
    """What you hold, what you made today, whether you are halted, and the agents' health."""

    halted: bool
    stops: list[StopStateOut]
    open_positions: list[PositionOut]
    realised_today: str
    realised_total: str
    unrealised_pnl: str | None
    open_exposure: str
    agents: list[AgentOut]
    as_of: datetime

    @classmethod
    def of(cls, s: TraderStatus, now: datetime) -> StatusOut:
        return cls(
            s.halted, [StopStateOut.of(x) for x in s.stops], [PositionOut.priced(p) for p in s.open_positions],
            money(s.realised_today), money(s.realised_total), _money_or_none(s.unrealised), money(s.open_exposure),
            [AgentOut.of(a, a.is_stale(now)) for a in s.agents], s.as_of,
        )


# --- backtests (entrypoints/http/backtests.py) ------------------------------------------------

BacktestStrategy = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]


class BacktestIn(Struct, forbid_unknown_fields=True):
    fee_rate: Annotated[str, Meta(pattern=r"^[0-9]{1,3}(\.[0-9]{1,12})?$",
                                  description="taker fee per fill, a fraction")] = "0.0005"
    strategies: Annotated[list[BacktestStrategy], Meta(max_length=50)] = []


# --- notifications (entrypoints/http/notifications.py) -----------------------------------------

KindName = Literal["target_created", "snipe_scheduled", "snipe_filled", "snipe_failed", "exit", "position_closed",
                   "emergency_stop", "daily_summary"]
ModeName = Literal["on", "off", "silent"]
ChannelName = Literal["telegram", "discord", "slack", "email", "webhook"]


class ChannelIn(Struct, forbid_unknown_fields=True):
    """One channel. `address`: the Telegram chat id, the e-mail address or the webhook URL.
    `secret` (write-only): the Discord or Slack webhook URL, the webhook's HMAC secret, or an SMTP
    URL of your own for e-mail; left out, the stored one is kept."""

    kind: ChannelName
    enabled: bool = True
    address: Annotated[str, Meta(max_length=500)] = ""
    secret: Annotated[str, Meta(max_length=2000)] | None = None


class ChannelOut(Struct):
    kind: str
    enabled: bool
    address: str
    secret_set: bool


class NotificationsIn(Struct, forbid_unknown_fields=True):
    """The whole of your notification settings (PUT replaces them). A kind left out of `kinds` is on."""

    kinds: dict[KindName, ModeName] = {}
    channels: Annotated[list[ChannelIn], Meta(max_length=5)] = []
    daily_summary_at: Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                          description="HH:MM, UTC")] | None = None


class NotificationsOut(Struct):
    kinds: dict[str, str]
    channels: list[ChannelOut]
    daily_summary_at: str | None

    @classmethod
    def of(cls, p: NotificationPreferences) -> NotificationsOut:
        return cls(
            {k.value: p.mode(k).value for k in NotificationKind},
            [ChannelOut(c.kind, c.enabled, c.address, bool(c.secret)) for c in p.channels],
            p.daily_summary_at,
        )


class UndeliveredOut(Struct):
    id: int
    kind: str
    channel: str
    title: str
    text: str
    attempts: int
    queued_at: datetime
    error: str | None

    @classmethod
    def of(cls, e: OutboxEntry) -> UndeliveredOut:
        return cls(e.id, e.kind, e.channel, e.title, e.body, e.attempts, e.created_at, e.last_error)


# --- paged lists (issue 17): `next` is the cursor to the following page, null on the last -----

class TargetPage(Struct):
    items: list[TargetOut]
    next: str | None


class PositionPage(Struct):
    items: list[PositionOut]
    next: str | None


class ListingPage(Struct):
    items: list[ListingOut]
    next: str | None


class TradePage(Struct):
    items: list[TradeOut]
    next: str | None


class EventPage(Struct):
    items: list[EventOut]
    next: str | None
