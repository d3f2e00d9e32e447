"""Two reads the dashboard needs beyond the resources of routes.py.

POST /api/v1/backtests: `sniper backtest` over the bundled listing recordings, for the signed-in
trader's exit strategies (the presets and their own plans), answered as JSON: the per-strategy
table and each strategy's equity curve (the dashboard draws it).

GET /api/v1/listings/{coin_id}/analysis: the latest advisory opinion recorded on a listing (an AI
provider's or the rules', application/ai.py), 404 when there is none. Listings are public: any
signed-in user may read it."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from decimal import Decimal
from typing import Annotated, cast

from dishka import FromDishka
from dishka.integrations.litestar import DishkaRouter
from litestar import get, post
from litestar.params import JSONBody, PathParameter
from litestar.status_codes import HTTP_200_OK
from msgspec import Struct

from adapters.paper.recordings import BUNDLED_RECORDINGS, RecordingDirectory
from application.ai import analysis_stream
from application.errors import InvalidInput, NotFound
from application.identity import Identity
from application.ports import EventStore
from application.use_cases.backtest import BacktestReport, BacktestRequest, RunBacktest
from application.use_cases.strategies import ListExitStrategies
from domain.events import ListingAnalysed
from entrypoints.http.errors import error_responses
from entrypoints.http.schemas import BacktestIn, money

_ONE_AT_A_TIME = threading.Lock()  # a run takes a core for a moment: never several at once


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
    def of(cls, report: BacktestReport) -> BacktestOut:
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
    identity: FromDishka[Identity], strategies: FromDishka[ListExitStrategies],
    data: JSONBody[BacktestIn | None] = None,
) -> BacktestOut:
    data = data or BacktestIn()
    try:
        fee_rate = Decimal(data.fee_rate)
    except ArithmeticError:
        raise InvalidInput("fee_rate", "a decimal fraction, e.g. 0.0005") from None
    own = {s.plan.name: s.plan for s in await strategies(identity.user_id) if not s.preset}
    request = BacktestRequest(tuple(data.strategies), own, fee_rate)
    # The domain refuses an unknown strategy or a fee rate out of bounds: 422 with its message.
    return BacktestOut.of(await asyncio.to_thread(_run, request))


def _run(request: BacktestRequest) -> BacktestReport:
    with _ONE_AT_A_TIME:
        return RunBacktest(RecordingDirectory(BUNDLED_RECORDINGS))(request)


class AnalysisOut(Struct):
    coin_id: str
    symbol: str
    score: str  # 0..100
    explanation: str
    provider: str
    similar_symbols: list[str]
    analysed_at: datetime


@get("/listings/{coin_id:str}/analysis", responses=error_responses(400, 401, 404, 429),
     summary="The latest advisory analysis of a listing (AI or rules), when there is one")
async def listing_analysis(
    coin_id: Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$", max_length=200)],
    identity: FromDishka[Identity], store: FromDishka[EventStore],
) -> AnalysisOut:
    events = [r for r in await store.load(analysis_stream(coin_id)) if isinstance(r.event, ListingAnalysed)]
    if not events:
        raise NotFound(f"no analysis of listing {coin_id}")
    latest = events[-1]
    e = cast(ListingAnalysed, latest.event)
    return AnalysisOut(e.coin_id, e.symbol, money(e.score), e.explanation, e.provider, list(e.similar_symbols),
                       latest.occurred_at)


def backtests_router() -> DishkaRouter:
    return DishkaRouter("/api/v1", route_handlers=[run_backtest, listing_analysis], tags=["cockpit"],
                        security=[{"bearer": []}])
