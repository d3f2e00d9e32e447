"""Backtests: run exit plans over recorded listings and compare what each would have made.

Every trade is simulated with the live position logic: the same `Position` aggregate opens
from a market-buy fill at the first recorded price and `decide_exit` chooses every exit on
every tick, in the order `ManagePositions` follows (peak first, then exits until none is due).
Fills are paper fills: at the tick's price, with a taker fee on the notional, charged in the
quote asset, as the paper broker charges it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from application.ports import ListingRecording, RecordingSource
from domain.errors import InvalidValue
from domain.events import Cause
from domain.exit_plans import HUNDRED, PRESETS, ExitPlan, resolve_exit_plan
from domain.position import ExitDecision, ExitReason, Position, PositionStatus
from domain.values import round_down_to_scale

DEFAULT_FEE_RATE = Decimal("0.0005")
# The recording ends with the position still open: it is sold at the last recorded price.
END_OF_PATH = "end_of_path"


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """`strategies`: names of presets or of `custom_plans`; empty means every preset, then every custom plan.
    `fee_rate`: taker fee as a fraction of each fill's notional (0.0005 = 0.05 %).
    `starting_capital`: what the equity curve starts from, for drawdown in percent;
    None means the sum of the recordings' quote amounts (every trade funded at once)."""

    strategies: Sequence[str] = ()
    custom_plans: dict[str, ExitPlan] = field(default_factory=dict)
    fee_rate: Decimal = DEFAULT_FEE_RATE
    starting_capital: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ExitFill:
    reason: str  # an ExitReason value, or END_OF_PATH
    level: int | None
    at: datetime
    price: Decimal
    quantity: Decimal
    fee: Decimal
    pnl: Decimal


@dataclass(frozen=True, slots=True)
class TradeResult:
    symbol: str
    source: str
    entry_at: datetime
    entry_price: Decimal
    quantity: Decimal
    cost: Decimal  # quote spent plus the buy fee
    exits: tuple[ExitFill, ...]
    fees: Decimal  # buy and sell fees
    pnl: Decimal

    @property
    def closed_at(self) -> datetime:
        return self.exits[-1].at

    @property
    def hold(self) -> timedelta:
        return self.closed_at - self.entry_at


@dataclass(frozen=True, slots=True)
class EquityPoint:
    at: datetime
    pnl: Decimal  # cumulative realised P&L after the trades closed by then


@dataclass(frozen=True, slots=True)
class StrategyResult:
    plan: ExitPlan
    trades: tuple[TradeResult, ...]
    total_pnl: Decimal
    hit_rate: Decimal | None  # share of trades with P&L > 0, 0..1; None without trades
    max_drawdown: Decimal
    max_drawdown_percent: Decimal
    average_hold: timedelta | None
    equity_curve: tuple[EquityPoint, ...]

    @property
    def name(self) -> str:
        return self.plan.name


@dataclass(frozen=True, slots=True)
class BacktestReport:
    strategies: tuple[StrategyResult, ...]
    recordings: int
    fee_rate: Decimal
    starting_capital: Decimal


def max_drawdown(pnl_curve: Sequence[Decimal], starting_capital: Decimal) -> tuple[Decimal, Decimal]:
    """Largest fall of equity (capital + cumulative P&L) from an earlier peak: (amount, percent of that peak).

    The curve starts at the capital itself, so a first losing trade is a drawdown too. Percent is 0
    while the peak is not positive (no capital to lose a share of).
    """
    peak = starting_capital
    worst, worst_percent = Decimal(0), Decimal(0)
    for pnl in pnl_curve:
        equity = starting_capital + pnl
        if equity > peak:
            peak = equity
            continue
        fall = peak - equity
        if fall > worst:
            worst = fall
        if peak > 0 and fall * HUNDRED / peak > worst_percent:
            worst_percent = fall * HUNDRED / peak
    return worst, worst_percent


class RunBacktest:
    """Run each chosen exit plan over every recorded listing; report P&L, hit rate, drawdown and hold time."""

    def __init__(self, source: RecordingSource) -> None:
        self.source = source

    def __call__(self, request: BacktestRequest) -> BacktestReport:
        if not (Decimal(0) <= request.fee_rate < Decimal("0.1")):
            raise InvalidValue(f"fee rate must be at least 0 and below 0.1 (10 %), got {request.fee_rate}")
        plans = _chosen_plans(request)
        recordings = sorted(self.source.recordings(), key=lambda r: (r.launch_at, r.symbol.code, r.source))
        capital = request.starting_capital
        if capital is None:
            capital = sum((r.quote_amount for r in recordings), Decimal(0))
        if capital < 0:
            raise InvalidValue(f"starting capital must not be negative, got {capital}")
        results = tuple(_run_plan(plan, recordings, request.fee_rate, capital) for plan in plans)
        return BacktestReport(results, len(recordings), request.fee_rate, capital)


def _chosen_plans(request: BacktestRequest) -> list[ExitPlan]:
    names = list(request.strategies) or [*PRESETS, *(n for n in request.custom_plans if n not in PRESETS)]
    plans: list[ExitPlan] = []
    for name in names:
        plan = resolve_exit_plan(name, request.custom_plans)
        if plan not in plans:
            plans.append(plan)
    return plans


def _run_plan(
    plan: ExitPlan, recordings: Sequence[ListingRecording], fee_rate: Decimal, capital: Decimal,
) -> StrategyResult:
    trades = [simulate_trade(plan, rec, fee_rate, n) for n, rec in enumerate(recordings)]
    closing_order = sorted(trades, key=lambda t: (t.closed_at, t.symbol, t.source))
    curve: list[EquityPoint] = []
    if trades:
        curve.append(EquityPoint(min(t.entry_at for t in trades), Decimal(0)))
    running = Decimal(0)
    for trade in closing_order:
        running += trade.pnl
        curve.append(EquityPoint(trade.closed_at, running))
    drawdown, drawdown_percent = max_drawdown([p.pnl for p in curve], capital)
    wins = sum(1 for t in trades if t.pnl > 0)
    return StrategyResult(
        plan=plan,
        trades=tuple(trades),
        total_pnl=running,
        hit_rate=Decimal(wins) / Decimal(len(trades)) if trades else None,
        max_drawdown=drawdown,
        max_drawdown_percent=drawdown_percent,
        average_hold=sum((t.hold for t in trades), timedelta()) / len(trades) if trades else None,
        equity_curve=tuple(curve),
    )


def simulate_trade(plan: ExitPlan, recording: ListingRecording, fee_rate: Decimal, number: int = 0) -> TradeResult:
    """One listing under one plan: buy at the first price, let the position's own rules sell."""
    if not recording.prices:
        raise InvalidValue(f"recording {recording.source} has no prices")
    first = recording.prices[0]
    quantity = round_down_to_scale(recording.quote_amount / first.price, recording.quantity_scale)
    if quantity <= 0:
        raise InvalidValue(f"recording {recording.source}: {recording.quote_amount} buys nothing at {first.price}")
    notional = quantity * first.price
    buy_fee = notional * fee_rate
    correlation = f"backtest-{number}"
    position = Position.open(
        f"t-backtest{number}", "backtest", recording.symbol, first.price, quantity, notional, buy_fee,
        recording.symbol.quote, recording.quantity_scale, plan, Cause(first.at, correlation),
    )
    exits: list[ExitFill] = []
    for point in recording.prices[1:]:
        cause = Cause(point.at, correlation)
        position.observe(point.price, cause)
        while position.status is not PositionStatus.CLOSED:
            decision = position.decide_exit(point.price, point.at)
            if decision is None:
                break
            exits.append(_sell(position, decision, decision.reason.value, point.at, fee_rate, cause))
        if position.status is PositionStatus.CLOSED:
            break
    if position.status is not PositionStatus.CLOSED:
        last = recording.prices[-1]
        # No exit reason of the plan fired; the position goes through the same fill accounting,
        # labelled as a forced exit at the end of the recording.
        forced = ExitDecision(ExitReason.MAX_HOLD, None, position.remaining, last.price)
        exits.append(_sell(position, forced, END_OF_PATH, last.at, fee_rate, Cause(last.at, correlation)))
    position.mark_saved()
    return TradeResult(
        symbol=recording.symbol.code,
        source=recording.source,
        entry_at=first.at,
        entry_price=first.price,
        quantity=quantity,
        cost=position.total_cost,
        exits=tuple(exits),
        fees=position.fees,
        pnl=position.realised_pnl,
    )


def _sell(
    position: Position, decision: ExitDecision, label: str, at: datetime, fee_rate: Decimal, cause: Cause,
) -> ExitFill:
    position.submit_exit(decision, cause)
    fee = decision.quantity * decision.trigger_price * fee_rate
    before = position.realised_pnl
    position.record_exit_fill(decision.trigger_price, decision.quantity, fee, cause)
    gained = position.realised_pnl - before
    return ExitFill(label, decision.level, at, decision.trigger_price, decision.quantity, fee, gained)
