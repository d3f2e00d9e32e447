"""Replay scenarios: listings announced over time, their symbol states, and prices after open.

A scenario is a JSON file. Loading checks it whole before anything runs, and says in one
line what is wrong and where (`listings[2].prices[0].price: must be positive`). That includes
the bounds of adapters/paper/json_input.py: a file the parser accepts is one the run can play.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec

from adapters.paper.json_input import (
    LONGEST,
    MAX_AMOUNT,
    MAX_PRICE,
    MIN_PRICE,
    decode_input,
    number_problem,
    read_input,
    time_problem,
)
from application.errors import ConfigurationError
from application.ports import TraderSettings
from domain.errors import DomainError
from domain.exit_plans import ExitPlan, TakeProfitLevel, resolve_exit_plan, within_bounds
from domain.risk import RiskProfile
from domain.target import entry_price_cap
from domain.values import Symbol, SymbolState


class _Strict(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Subclasses repeat frozen=True: msgspec inherits it, but type checkers do not see it inherited."""


class RiskSpec(_Strict, frozen=True):
    max_quote_per_snipe: Decimal = Decimal("100")
    max_concurrent_positions: int = 3
    max_daily_loss: Decimal = Decimal("50")
    max_total_exposure: Decimal = Decimal("300")
    allowed_quote_assets: list[str] = msgspec.field(default_factory=lambda: ["USDT"])


class LevelSpec(_Strict, frozen=True):
    gain_percent: Decimal
    sell_percent: Decimal


class ExitPlanSpec(_Strict, frozen=True):
    name: str
    take_profits: list[LevelSpec]
    stop_loss_percent: Decimal
    trailing_stop_percent: Decimal | None = None
    max_hold_seconds: int | None = None


class TraderSpec(_Strict, frozen=True):
    user_id: str
    quote_amount: Decimal
    exit_strategy: str = "balanced"
    auto_snipe: bool = True
    min_confidence: Decimal = Decimal("0.80")
    only_tickers: list[str] = msgspec.field(default_factory=list)
    skip_tickers: list[str] = msgspec.field(default_factory=list)
    risk: RiskSpec = msgspec.field(default_factory=RiskSpec)
    exit_plans: list[ExitPlanSpec] = msgspec.field(default_factory=list)
    max_entry_price: Decimal | None = None  # the entry price cap of this trader's targets (None: market buys)


class StateSpec(_Strict, frozen=True):
    at: datetime
    sts: int
    st: int
    tt: int


class PriceSpec(_Strict, frozen=True):
    t: Decimal  # seconds after the pair opens
    price: Decimal


class ListingSpec(_Strict, frozen=True):
    coin_id: str
    ticker: str
    announced_at: datetime
    launch_at: datetime
    full_name: str = ""
    quote_asset: str = "USDT"
    price_scale: int = 8
    quantity_scale: int = 2
    min_notional: Decimal = Decimal("1")
    # The pair really opens this long after the announced launch ("not yet open" until then).
    open_delay_ms: int = 0
    states: list[StateSpec] = msgspec.field(default_factory=list)
    prices: list[PriceSpec] = msgspec.field(default_factory=list)


class Scenario(_Strict, frozen=True):
    name: str
    start: datetime
    end: datetime
    listings: list[ListingSpec]
    traders: list[TraderSpec] = msgspec.field(default_factory=list)
    description: str = ""
    taker_fee: Decimal = Decimal("0.0005")

    def trader_settings(self) -> list[TraderSettings]:
        return [_settings(t) for t in self.traders]

    def listing(self, symbol: Symbol) -> ListingSpec | None:
        for spec in self.listings:
            if spec.ticker + spec.quote_asset == symbol.code:
                return spec
        return None


def open_time(spec: ListingSpec) -> datetime:
    return spec.launch_at + timedelta(milliseconds=spec.open_delay_ms)


def symbol_of(spec: ListingSpec) -> Symbol:
    return Symbol(spec.ticker, spec.quote_asset)


def state_of(spec: StateSpec, launch_at: datetime) -> SymbolState:
    return SymbolState(spec.sts, spec.st, spec.tt, int(launch_at.timestamp() * 1000))


def _settings(t: TraderSpec) -> TraderSettings:
    custom = {
        p.name: within_bounds(ExitPlan(
            p.name,
            tuple(TakeProfitLevel(lv.gain_percent, lv.sell_percent) for lv in p.take_profits),
            p.stop_loss_percent,
            p.trailing_stop_percent,
            p.max_hold_seconds,
        ))
        for p in t.exit_plans
    }
    risk = RiskProfile(
        t.risk.max_quote_per_snipe, t.risk.max_concurrent_positions, t.risk.max_daily_loss, t.risk.max_total_exposure,
        tuple(t.risk.allowed_quote_assets),
    )
    return TraderSettings(
        user_id=t.user_id,
        auto_snipe=t.auto_snipe,
        quote_amount=t.quote_amount,
        exit_strategy=t.exit_strategy,
        custom_exit_plans=custom,
        risk=risk,
        min_confidence=t.min_confidence,
        only_tickers=frozenset(t.only_tickers),
        skip_tickers=frozenset(t.skip_tickers),
        max_entry_price=t.max_entry_price,
    )


def load_scenario(path: Path) -> Scenario:
    return parse_scenario(read_input(path, "scenario"), str(path))


def parse_scenario(raw: bytes, source: str = "scenario") -> Scenario:
    scenario = decode_input(raw, Scenario, "scenario", source)
    problems = _check(scenario)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigurationError(f"scenario {source}: {problems[0]}{more}")
    return scenario


def _moment(moment: datetime, where: str, problems: list[str]) -> bool:
    problem = time_problem(moment)
    if problem is None:
        return True
    problems.append(f"{where}: {problem}")
    return False


def _finite(value: Decimal, where: str, problems: list[str]) -> bool:
    # NaN and infinities decode as Decimals too, and NaN cannot even be compared.
    if value.is_finite():
        return True
    problems.append(f"{where}: must be a finite number, got {value}")
    return False


def _within(value: Decimal, low: Decimal, high: Decimal, where: str, problems: list[str]) -> None:
    problem = number_problem(value, low, high)
    if problem is not None:
        problems.append(f"{where}: {problem}")


_MAX_STATE_CODE = 99  # MEXC's codes are single digits


def _check(s: Scenario) -> list[str]:
    problems: list[str] = []
    _moment(s.start, "start", problems)
    _moment(s.end, "end", problems)
    if problems:
        return problems
    if s.end <= s.start:
        problems.append("end: must come after start")
    if s.end - s.start > LONGEST:
        problems.append(f"end: at most {LONGEST.days} days after start (the replay plays its whole span)")
    if not s.listings:
        problems.append("listings: a scenario needs at least one listing")
    if _finite(s.taker_fee, "taker_fee", problems) and not (Decimal(0) <= s.taker_fee < Decimal("0.1")):
        problems.append(f"taker_fee: must be between 0 and 0.1, got {s.taker_fee}")
    seen_coins: set[str] = set()
    seen_symbols: set[str] = set()
    for i, spec in enumerate(s.listings):
        where = f"listings[{i}]"
        if not spec.coin_id:
            problems.append(f"{where}.coin_id: must not be empty")
        if spec.coin_id in seen_coins:
            problems.append(f"{where}.coin_id: {spec.coin_id!r} appears twice")
        seen_coins.add(spec.coin_id)
        try:
            sym = Symbol(spec.ticker, spec.quote_asset)
        except DomainError as exc:
            problems.append(f"{where}.ticker: {exc}")
            continue
        if sym.code in seen_symbols:
            problems.append(f"{where}.ticker: {sym.code} appears twice")
        seen_symbols.add(sym.code)
        announced = _moment(spec.announced_at, f"{where}.announced_at", problems)
        launch_read = _moment(spec.launch_at, f"{where}.launch_at", problems)
        if launch_read and announced and spec.launch_at <= spec.announced_at:
            problems.append(f"{where}.launch_at: must come after announced_at")
        if not (0 <= spec.price_scale <= 18) or not (0 <= spec.quantity_scale <= 18):
            problems.append(f"{where}: price_scale and quantity_scale must be between 0 and 18")
        _within(spec.min_notional, Decimal(0), MAX_AMOUNT, f"{where}.min_notional", problems)
        if not (0 <= spec.open_delay_ms <= 600_000):
            problems.append(f"{where}.open_delay_ms: must be between 0 and 600000")
        last_at: datetime | None = None
        for j, st in enumerate(spec.states):
            if not _moment(st.at, f"{where}.states[{j}].at", problems):
                continue
            if last_at is not None and st.at < last_at:
                problems.append(f"{where}.states[{j}].at: states must be in time order")
            last_at = st.at
            if not all(0 <= code <= _MAX_STATE_CODE for code in (st.sts, st.st, st.tt)):
                problems.append(f"{where}.states[{j}]: state codes must be between 0 and {_MAX_STATE_CODE}")
        last_t: Decimal | None = None
        for j, p in enumerate(spec.prices):
            price_finite = _finite(p.price, f"{where}.prices[{j}].price", problems)
            t_finite = _finite(p.t, f"{where}.prices[{j}].t", problems)
            if not (price_finite and t_finite):
                continue
            if p.price <= 0:
                problems.append(f"{where}.prices[{j}].price: must be positive, got {p.price}")
            else:
                _within(p.price, MIN_PRICE, MAX_PRICE, f"{where}.prices[{j}].price", problems)
            if p.t < 0:
                problems.append(f"{where}.prices[{j}].t: seconds after open must not be negative")
            else:
                _within(p.t, Decimal(0), Decimal(int(LONGEST.total_seconds())), f"{where}.prices[{j}].t", problems)
            if last_t is not None and p.t < last_t:
                problems.append(f"{where}.prices[{j}].t: prices must be in time order")
            last_t = p.t
        if not spec.prices:
            problems.append(f"{where}.prices: a listing needs at least one price after open")
    seen_users: set[str] = set()
    for i, t in enumerate(s.traders):
        where = f"traders[{i}]"
        if not t.user_id:
            problems.append(f"{where}.user_id: must not be empty")
        if t.user_id in seen_users:
            problems.append(f"{where}.user_id: {t.user_id!r} appears twice")
        seen_users.add(t.user_id)
        if _finite(t.quote_amount, f"{where}.quote_amount", problems):
            if t.quote_amount <= 0:
                problems.append(f"{where}.quote_amount: must be positive, got {t.quote_amount}")
            else:
                _within(t.quote_amount, Decimal(0), MAX_AMOUNT, f"{where}.quote_amount", problems)
        for name in ("max_quote_per_snipe", "max_daily_loss", "max_total_exposure"):
            _within(getattr(t.risk, name), Decimal(0), MAX_AMOUNT, f"{where}.risk.{name}", problems)
        if not 0 <= t.risk.max_concurrent_positions <= 1000:
            problems.append(f"{where}.risk.max_concurrent_positions: must be between 0 and 1000")
        if _finite(t.min_confidence, f"{where}.min_confidence", problems) and not (Decimal(0) <= t.min_confidence <= 1):
            problems.append(f"{where}.min_confidence: must be between 0 and 1")
        if t.max_entry_price is not None and _finite(t.max_entry_price, f"{where}.max_entry_price", problems):
            _within(t.max_entry_price, MIN_PRICE, MAX_PRICE, f"{where}.max_entry_price", problems)
        try:
            settings = _settings(t)
            resolve_exit_plan(settings.exit_strategy, settings.custom_exit_plans)
            if t.max_entry_price is not None and t.max_entry_price.is_finite():
                entry_price_cap(t.max_entry_price, "max_entry_price")
        except DomainError as exc:
            problems.append(f"{where}: {exc}")
    return problems
