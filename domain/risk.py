"""A user's risk profile and the pre-trade checks built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Context, Decimal

from domain.errors import InvalidValue
from domain.specifications import Rule, Specification
from domain.values import MONEY_PLACES, to_decimal


@dataclass(frozen=True, slots=True)
class RiskProfile:
    max_quote_per_snipe: Decimal
    max_concurrent_positions: int
    max_daily_loss: Decimal
    max_total_exposure: Decimal
    allowed_quote_assets: tuple[str, ...] = ("USDT",)
    live: bool = False

    def __post_init__(self) -> None:
        for name in ("max_quote_per_snipe", "max_daily_loss", "max_total_exposure"):
            v = to_decimal(getattr(self, name), name.replace("_", " "))
            if v < 0:
                raise InvalidValue(f"{name.replace('_', ' ')} must not be negative: {v}")
            object.__setattr__(self, name, v)
        n = self.max_concurrent_positions
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidValue(f"max concurrent positions must be a non-negative integer: {n!r}")
        object.__setattr__(self, "allowed_quote_assets", tuple(self.allowed_quote_assets))
        if not self.allowed_quote_assets:
            raise InvalidValue("at least one quote asset must be allowed")


DEFAULT_RISK_PROFILE = RiskProfile(
    max_quote_per_snipe=Decimal("100"),
    max_concurrent_positions=3,
    max_daily_loss=Decimal("50"),
    max_total_exposure=Decimal("300"),
)


# What a buy and a sell cost in fees when the pair's own taker fee is not known: MEXC's spot taker fee.
ASSUMED_TAKER_FEE = Decimal("0.0005")


def loss_at_stop(quote_amount: Decimal, stop_loss_percent: Decimal | None, fee_rate: Decimal) -> Decimal:
    """What a buy of `quote_amount` loses when it is sold at its stop-loss: the drop, the buy's fee
    and the sell's fee. With no stop-loss nothing caps the fall: all of it may be lost."""
    if stop_loss_percent is None:
        return quote_amount
    kept = quote_amount * (1 - stop_loss_percent / 100)
    return quote_amount - kept + quote_amount * fee_rate + kept * fee_rate


def position_loss_at_stop(
    remaining_cost: Decimal, remaining: Decimal, entry_price: Decimal, stop_loss_percent: Decimal | None,
    fee_rate: Decimal,
) -> Decimal:
    """What an open position would still lose when sold at its stop-loss (its buy fee is in its
    cost, the sell's fee is counted here); never below zero. No stop-loss: all it cost."""
    if stop_loss_percent is None:
        return max(remaining_cost, Decimal(0))
    proceeds = remaining * entry_price * (1 - stop_loss_percent / 100) * (1 - fee_rate)
    return max(remaining_cost - proceeds, Decimal(0))


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """What a pre-trade check looks at: the buy, and the user's book at that moment.

    `stop_loss_percent`: the buy's exit plan's (None: no stop-loss). `open_at_risk`: what the
    user's open positions would still lose at their stop-losses. `min_notional`: the pair's
    smallest order value, when the exchange's rules for the pair are known (None: not checked)."""

    quote_amount: Decimal
    quote_asset: str
    open_positions: int
    open_exposure: Decimal
    realised_pnl_today: Decimal
    profile: RiskProfile = field(default=DEFAULT_RISK_PROFILE)
    stop_loss_percent: Decimal | None = None
    open_at_risk: Decimal = Decimal(0)
    fee_rate: Decimal = ASSUMED_TAKER_FEE
    min_notional: Decimal | None = None

    @property
    def lost_today(self) -> Decimal:
        return max(-self.realised_pnl_today, Decimal(0))

    @property
    def possible_loss(self) -> Decimal:
        """This buy's loss at its stop-loss, fees both ways included."""
        return loss_at_stop(self.quote_amount, self.stop_loss_percent, self.fee_rate)

    @property
    def possible_daily_loss(self) -> Decimal:
        """Today's loss if every open position and this buy ended at their stop-losses."""
        return self.lost_today + self.open_at_risk + self.possible_loss


def _amount(value: Decimal) -> str:
    """Money in a refusal: at most 8 decimals, no trailing zeros, never an exponent."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        value = value.quantize(Decimal("1e-8"), context=Context(prec=100))
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _daily_loss_refusal(p: TradeProposal) -> str:
    limit = p.profile.max_daily_loss
    if -p.realised_pnl_today >= limit:
        return f"today's loss {-p.realised_pnl_today} has reached the daily limit {limit}"
    this = (
        "with no stop-loss (all of it)" if p.stop_loss_percent is None
        else f"at its {p.stop_loss_percent}% stop-loss, fees both ways,"
    )
    return (
        f"today's loss {_amount(p.lost_today)} + open positions at their stop-losses {_amount(p.open_at_risk)} "
        f"+ this snipe {this} {_amount(p.possible_loss)} = {_amount(p.possible_daily_loss)} "
        f"would exceed the daily loss limit {limit}"
    )


def standing_limits() -> Specification[TradeProposal]:
    """The checks of the buy itself, which nothing before its launch can change: a target's
    creation or amendment is judged on these alone (the amount, its precision, the pair's
    minimum order value when known, the quote asset). The book-dependent limits (concurrent
    positions, exposure, daily loss) wait for the launch: a trader at the position maximum may
    schedule a later snipe, and the positions then open decide."""
    within_size = Rule[TradeProposal](
        "position size",
        lambda p: p.quote_amount <= p.profile.max_quote_per_snipe,
        lambda p: f"quote amount {p.quote_amount} exceeds the per-snipe limit {p.profile.max_quote_per_snipe}",
    )
    positive = Rule[TradeProposal](
        "positive amount",
        lambda p: p.quote_amount > 0,
        lambda p: f"quote amount must be positive: {p.quote_amount}",
    )
    # Money is carried to MONEY_PLACES: an amount finer than that cannot be spent as given.
    precision = Rule[TradeProposal](
        "quote amount precision",
        lambda p: p.quote_amount == p.quote_amount.quantize(MONEY_PLACES, context=Context(prec=100)),
        lambda p: (
            f"quote amount {p.quote_amount:f} has more than {-int(MONEY_PLACES.as_tuple().exponent)} decimal places"
        ),
    )
    minimum = Rule[TradeProposal](
        "minimum order value",
        lambda p: p.min_notional is None or p.quote_amount <= 0 or p.quote_amount >= p.min_notional,
        lambda p: f"quote amount {p.quote_amount:f} is below the pair's minimum order value {p.min_notional}",
    )
    asset = Rule[TradeProposal](
        "quote asset",
        lambda p: p.quote_asset in p.profile.allowed_quote_assets,
        lambda p: f"quote asset {p.quote_asset} is not allowed ({', '.join(p.profile.allowed_quote_assets)})",
    )
    return positive & within_size & precision & minimum & asset


def risk_limits() -> Specification[TradeProposal]:
    """The pre-trade checks right before the send: the standing limits and the book's."""
    concurrency = Rule[TradeProposal](
        "concurrent positions",
        lambda p: p.open_positions < p.profile.max_concurrent_positions,
        lambda p: f"{p.open_positions} positions already open, limit {p.profile.max_concurrent_positions}",
    )
    exposure = Rule[TradeProposal](
        "total exposure",
        lambda p: p.open_exposure + p.quote_amount <= p.profile.max_total_exposure,
        lambda p: (
            f"exposure {p.open_exposure} + {p.quote_amount} would exceed the limit {p.profile.max_total_exposure}"
        ),
    )
    # The loss a trade may still cause counts before it is made: today's realised loss, what the
    # open positions would lose at their stop-losses, and this buy's loss at its stop-loss.
    daily_loss = Rule[TradeProposal](
        "daily loss",
        lambda p: (
            -p.realised_pnl_today < p.profile.max_daily_loss and p.possible_daily_loss <= p.profile.max_daily_loss
        ),
        _daily_loss_refusal,
    )
    return standing_limits() & concurrency & exposure & daily_loss
