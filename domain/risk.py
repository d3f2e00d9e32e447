"""A user's risk profile and the pre-trade checks built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from domain.errors import InvalidValue
from domain.specifications import Rule, Specification
from domain.values import to_decimal


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


@dataclass(frozen=True, slots=True)
class TradeProposal:
    """What a pre-trade check looks at: the buy, and the user's book at that moment."""

    quote_amount: Decimal
    quote_asset: str
    open_positions: int
    open_exposure: Decimal
    realised_pnl_today: Decimal
    profile: RiskProfile = field(default=DEFAULT_RISK_PROFILE)


def risk_limits() -> Specification[TradeProposal]:
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
    asset = Rule[TradeProposal](
        "quote asset",
        lambda p: p.quote_asset in p.profile.allowed_quote_assets,
        lambda p: f"quote asset {p.quote_asset} is not allowed ({', '.join(p.profile.allowed_quote_assets)})",
    )
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
    daily_loss = Rule[TradeProposal](
        "daily loss",
        lambda p: -p.realised_pnl_today < p.profile.max_daily_loss,
        lambda p: f"today's loss {-p.realised_pnl_today} has reached the daily limit {p.profile.max_daily_loss}",
    )
    return positive & within_size & asset & concurrency & exposure & daily_loss
