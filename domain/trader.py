"""Trader: one user's trading settings, risk profile and own exit strategies, event-sourced
in the stream `trader-<user id>`. Every change is checked here, so a stored history never
holds settings the sniper could not act on."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from domain.aggregate import Aggregate
from domain.errors import DomainError, InvalidValue
from domain.events import (
    Cause,
    DomainEvent,
    ExitStrategyDeleted,
    ExitStrategySaved,
    NotificationSettingsChanged,
    TraderSettingsChanged,
)
from domain.exit_plans import PRESETS, ExitPlan, resolve_exit_plan, within_bounds
from domain.notifications import DEFAULT_NOTIFICATIONS, NotificationPreferences, checked_preferences
from domain.risk import DEFAULT_RISK_PROFILE, RiskProfile
from domain.target import entry_price_cap
from domain.values import to_decimal

_TICKER_RE = re.compile(r"^[A-Z0-9]{1,20}$")
_ASSET_RE = re.compile(r"^[A-Z0-9]{1,16}$")
_STRATEGY_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_CUSTOM_STRATEGIES = 20
MAX_TICKER_FILTER = 200


class ExitStrategyInUse(DomainError):
    """A trader's default exit strategy cannot be deleted while it is the default."""


class ReservedStrategyName(DomainError):
    """Preset names belong to the presets."""


def trader_stream(user_id: str) -> str:
    return f"trader-{user_id}"


@dataclass(frozen=True, slots=True)
class TradingPreferences:
    """What a trader chooses, before it is checked against their risk profile and plans."""

    auto_snipe: bool = False
    quote_amount: Decimal = Decimal("10")
    quote_asset: str = "USDT"
    exit_strategy: str = "balanced"
    min_confidence: Decimal = Decimal("0.80")
    only_tickers: tuple[str, ...] = ()
    skip_tickers: tuple[str, ...] = ()
    risk: RiskProfile = field(default=DEFAULT_RISK_PROFILE)
    # The entry price cap new targets take unless they name their own (None: market buys).
    max_entry_price: Decimal | None = None


DEFAULT_PREFERENCES = TradingPreferences()


def _tickers(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    if len(values) > MAX_TICKER_FILTER:
        raise InvalidValue(f"{what}: at most {MAX_TICKER_FILTER} tickers, got {len(values)}")
    cleaned = []
    for raw in values:
        ticker = raw.strip().upper()
        if not _TICKER_RE.fullmatch(ticker):
            raise InvalidValue(f"{what}: {raw!r} is not a ticker (1-20 letters or digits)")
        if ticker not in cleaned:
            cleaned.append(ticker)
    return tuple(cleaned)


class Trader(Aggregate):
    """A fresh trader (no events) has the default preferences and no plans of their own."""

    kind = "trader"

    def _blank(self) -> None:
        self.preferences = DEFAULT_PREFERENCES
        self.custom_plans: dict[str, ExitPlan] = {}
        self.notifications: NotificationPreferences = DEFAULT_NOTIFICATIONS
        self.configured = False

    @classmethod
    def for_user(cls, user_id: str) -> Trader:
        if not user_id:
            raise InvalidValue("a trader needs a user id")
        trader = cls(trader_stream(user_id), user_id)
        trader._blank()
        return trader

    # --- commands -------------------------------------------------------------------

    def change_settings(self, wanted: TradingPreferences, cause: Cause) -> TradingPreferences:
        """Check and record `wanted` as the trader's settings; returns them as stored (tickers
        upper-cased, decimals normalised)."""
        amount = to_decimal(wanted.quote_amount, "quote amount")
        if amount <= 0:
            raise InvalidValue(f"quote amount must be positive, got {amount}")
        risk = wanted.risk
        if amount > risk.max_quote_per_snipe:
            raise InvalidValue(
                f"quote amount {amount} exceeds the risk profile's per-snipe limit {risk.max_quote_per_snipe}"
            )
        asset = wanted.quote_asset.strip().upper()
        if not _ASSET_RE.fullmatch(asset):
            raise InvalidValue(f"quote asset must be 1-16 letters or digits, got {wanted.quote_asset!r}")
        if asset not in risk.allowed_quote_assets:
            allowed_ones = ", ".join(risk.allowed_quote_assets)
            raise InvalidValue(f"quote asset {asset} is not among the allowed ones ({allowed_ones})")
        for allowed in risk.allowed_quote_assets:
            if not _ASSET_RE.fullmatch(allowed):
                raise InvalidValue(f"allowed quote assets must be 1-16 upper-case letters or digits, got {allowed!r}")
        confidence = to_decimal(wanted.min_confidence, "minimum confidence")
        if not (0 <= confidence <= 1):
            raise InvalidValue(f"minimum confidence must be between 0 and 1, got {confidence}")
        resolve_exit_plan(wanted.exit_strategy, self.custom_plans)  # UnknownExitStrategy names the known ones
        only = _tickers(tuple(wanted.only_tickers), "only tickers")
        skip = _tickers(tuple(wanted.skip_tickers), "skip tickers")
        if set(only) & set(skip):
            raise InvalidValue(f"tickers both wanted and skipped: {', '.join(sorted(set(only) & set(skip)))}")
        cap = entry_price_cap(wanted.max_entry_price)
        event = TraderSettingsChanged(
            auto_snipe=bool(wanted.auto_snipe), quote_amount=amount, quote_asset=asset,
            exit_strategy=wanted.exit_strategy, min_confidence=confidence, only_tickers=only, skip_tickers=skip,
            risk=risk, max_entry_price=cap,
        )
        self._record(event, cause)
        return self.preferences

    def save_exit_strategy(self, plan: ExitPlan, cause: Cause) -> None:
        if plan.name in PRESETS:
            raise ReservedStrategyName(f"{plan.name!r} is a preset; give your exit strategy another name")
        if not _STRATEGY_NAME_RE.fullmatch(plan.name):
            raise InvalidValue(
                f"exit strategy name must be 1-40 lower-case letters, digits, '-' or '_', got {plan.name!r}"
            )
        if plan.name not in self.custom_plans and len(self.custom_plans) >= MAX_CUSTOM_STRATEGIES:
            raise InvalidValue(f"at most {MAX_CUSTOM_STRATEGIES} exit strategies of your own")
        self._record(ExitStrategySaved(within_bounds(plan)), cause)

    def change_notifications(self, wanted: NotificationPreferences, cause: Cause) -> NotificationPreferences:
        """Check and record `wanted` as the trader's notification settings (as a whole)."""
        checked = checked_preferences(wanted)
        self._record(NotificationSettingsChanged(checked.modes, checked.channels, checked.daily_summary_at), cause)
        return self.notifications

    def delete_exit_strategy(self, name: str, cause: Cause) -> None:
        if name not in self.custom_plans:
            raise InvalidValue(f"no exit strategy of yours is named {name!r}")
        if self.preferences.exit_strategy == name:
            raise ExitStrategyInUse(f"exit strategy {name!r} is your default; choose another default first")
        self._record(ExitStrategyDeleted(name), cause)

    # --- fold -----------------------------------------------------------------------

    def replay(self, event: DomainEvent) -> None:
        """Fold one recorded event of this trader (for read models that follow the store)."""
        self._apply(event)

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case TraderSettingsChanged():
                self.preferences = TradingPreferences(
                    auto_snipe=event.auto_snipe, quote_amount=event.quote_amount, quote_asset=event.quote_asset,
                    exit_strategy=event.exit_strategy, min_confidence=event.min_confidence,
                    only_tickers=tuple(event.only_tickers), skip_tickers=tuple(event.skip_tickers), risk=event.risk,
                    max_entry_price=event.max_entry_price,
                )
                self.configured = True
            case ExitStrategySaved():
                self.custom_plans[event.plan.name] = event.plan
            case ExitStrategyDeleted():
                self.custom_plans.pop(event.name, None)
            case NotificationSettingsChanged():
                self.notifications = NotificationPreferences(
                    tuple(tuple(m) for m in event.modes), tuple(event.channels), event.daily_summary_at)  # type: ignore[misc]
            case _:
                raise TypeError(f"trader cannot apply {type(event).__name__}")
