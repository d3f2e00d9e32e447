"""The backtest fills as the paper broker fills: same quantity rounding, same fee on the same notional."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from adapters.paper.broker import PaperBroker
from application.ports import SymbolRules
from application.use_cases.backtest import simulate_trade
from domain.exit_plans import PRESETS
from domain.values import ClientOrderId, Symbol
from tests.backtest.support import recording

D = Decimal


class OnePrice:
    def __init__(self, symbol: Symbol, price: Decimal, fee: Decimal, scale: int) -> None:
        self.rules = SymbolRules(symbol, 8, scale, Decimal(0), fee)
        self.price = price

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        return self.rules

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return self.price


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 5, tzinfo=UTC)


async def test_buy_and_sell_fills_match_the_paper_broker() -> None:
    symbol, fee = Symbol("NEW", "USDT"), D("0.0005")
    entry, stop = D("0.0731"), D("0.0690")
    trade = simulate_trade(PRESETS["conservative"], recording([(0, str(entry)), (1, str(stop))], quote_amount="37.5",
                                                              quantity_scale=1), fee)
    broker = PaperBroker(OnePrice(symbol, entry, fee, 1), FixedClock())
    buy = await broker.place_market_buy(symbol, D("37.5"), ClientOrderId("buy1"))
    assert trade.quantity == buy.executed_quantity
    assert trade.cost == buy.executed_quote + buy.fee
    broker.market = OnePrice(symbol, stop, fee, 1)
    sell = await broker.place_market_sell(symbol, buy.executed_quantity, ClientOrderId("sell1"))
    (exit_fill,) = trade.exits
    assert (exit_fill.price, exit_fill.quantity, exit_fill.fee) == (
        sell.average_price, sell.executed_quantity, sell.fee
    )
    assert trade.pnl == sell.executed_quote - sell.fee - (buy.executed_quote + buy.fee)
