"""POST /api/v1/backtests: `sniper backtest` over the bundled listing recordings, for the signed-in
trader's exit strategies (the presets and their own plans), answered as JSON: the per-strategy
table and each strategy's equity curve (the dashboard draws it)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from dishka import FromDishka
from dishka.integrations.litestar import DishkaRouter
from litestar import post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from msgspec import Meta, Struct

from adapters.paper.recordings import BUNDLED_RECORDINGS, RecordingDirectory
from application.errors import InvalidInput
from application.identity import Identity
from application.use_cases.backtest import BacktestReport, BacktestRequest, RunBacktest
from application.use_cases.strategies import ListExitStrategies
from domain.errors import DomainError
from entrypoints.http.errors import error_responses
from entrypoints.http.schemas import money

StrategyName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
_ONE_AT_A_TIME = threading.Lock()  # a run takes a core for a moment: never several at once


class BacktestIn(Struct, forbid_unknown_fields=True):
    fee_rate: Annotated[str, Meta(pattern=r"^[0-9]{1,3}(\.[0-9]{1,12})?$", description="taker fee per fill, a fraction")] = "0.0005"
    strategies: Annotated[list[StrategyName], Meta(max_length=50)] = []


class EquityPointOut(Struct):
    at: datetime
    pnl: str


class StrategyResultOut(Struct):
    name: str
    trades: int
    total_pnl: str
    win_rate: str | None  # share of trades with P&L > 0, in percent
    average_pnl: str | None
    max_drawdown: str
    max_drawdown_percent: str
    average_hold: str | None  # seconds
    equity: list[str]  # cumulative P&L after each closed trade, in order
    equity_points: list[EquityPointOut]


class BacktestOut(Struct):
    listings: int
    fee_rate: str
    starting_capital: str
    strategies: list[StrategyResultOut]

    @classmethod
    def of(cls, report: BacktestReport) -> "BacktestOut":
        rows = []
        for s in report.strategies:
            count = len(s.trades)
            rows.append(StrategyResultOut(
                s.name, count, money(s.total_pnl),
                None if s.hit_rate is None else f"{(s.hit_rate * 100).quantize(Decimal('0.1'))}%",
                money(s.total_pnl / count) if count else None,
                money(s.max_drawdown), f"{s.max_drawdown_percent.quantize(Decimal('0.01'))}",
                None if s.average_hold is None else f"{int(s.average_hold.total_seconds())} s",
                [money(p.pnl) for p in s.equity_curve],
                [EquityPointOut(p.at, money(p.pnl)) for p in s.equity_curve],
            ))
        return cls(report.recordings, money(report.fee_rate), money(report.starting_capital), rows)


@post("/backtests", status_code=HTTP_200_OK, responses=error_responses(400, 401, 413, 422, 429),
      summary="Run a backtest of your exit strategies over the bundled listing recordings")
async def run_backtest(
    identity: FromDishka[Identity], strategies: FromDishka[ListExitStrategies], data: JSONBody[BacktestIn | None] = None,
) -> BacktestOut:
    data = data or BacktestIn()
    try:
        fee_rate = Decimal(data.fee_rate)
    except ArithmeticError:
        raise InvalidInput("fee_rate", "a decimal fraction, e.g. 0.0005") from None
    own = {s.plan.name: s.plan for s in await strategies(identity.user_id) if not s.preset}
    request = BacktestRequest(tuple(data.strategies), own, fee_rate)
    try:
        report = await asyncio.to_thread(_run, request)
    except DomainError as exc:
        raise InvalidInput("strategies" if data.strategies else "fee_rate", str(exc)) from None
    return BacktestOut.of(report)


def _run(request: BacktestRequest) -> BacktestReport:
    with _ONE_AT_A_TIME:
        return RunBacktest(RecordingDirectory(BUNDLED_RECORDINGS))(request)


def backtests_router() -> DishkaRouter:
    return DishkaRouter("/api/v1", route_handlers=[run_backtest], tags=["backtests"], security=[{"bearer": []}])
