"""PaperExchange: answers the listing feed, market data and trading ports from a scenario.

Market orders fill at the scenario price in force at the moment of the order, with the
scenario's taker fee charged in the quote asset; a capped buy (IMMEDIATE_OR_CANCEL limit) fills
there when that price is at or below its cap and is cancelled unfilled when above. Before a pair
opens, orders get the same "not yet open" reply MEXC gives (10007). Faults can be queued to rehearse what the real
exchange does on a bad day.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from adapters.paper.broker import PaperBroker
from adapters.paper.scenario import ListingSpec, Scenario, open_time, state_of, symbol_of
from application.errors import AmbiguousOutcome, NotFound, OrderAlreadyExists, OrderRefused, RateLimited
from application.ports import (
    CalendarEntry,
    Clock,
    OrderReport,
    PriceTick,
    SymbolRules,
    SymbolStateReport,
)
from domain.values import ClientOrderId, Symbol


class Fault(Enum):
    """A misbehaviour to inject into the next order call."""

    TIMEOUT_BEFORE_ACCEPT = "timeout_before_accept"  # lost on the way: no order exists
    TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"  # order placed, the reply lost
    RATE_LIMITED = "rate_limited"
    INSUFFICIENT_BALANCE = "insufficient_balance"


class PaperExchange:
    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.scenario = scenario
        self.clock = clock
        self._by_symbol = {symbol_of(spec).code: spec for spec in scenario.listings}
        self._broker = PaperBroker(self, clock)
        self.faults: deque[Fault] = deque()
        self.calls: list[str] = []  # what was asked, in order, for tests and the timeline

    # --- ListingFeed ---------------------------------------------------------------------

    async def calendar(self) -> list[CalendarEntry]:
        now = self.clock.now()
        return [
            CalendarEntry(spec.coin_id, spec.ticker, spec.full_name or spec.ticker, symbol_of(spec), spec.launch_at)
            for spec in self.scenario.listings
            if spec.announced_at <= now
        ]

    async def symbol_states(self) -> list[SymbolStateReport]:
        now = self.clock.now()
        reports = []
        for spec in self.scenario.listings:
            if spec.announced_at > now:
                continue
            current = None
            for st in spec.states:
                if st.at <= now:
                    current = st
            if current is not None:
                reports.append(SymbolStateReport(spec.coin_id, spec.ticker, state_of(current, spec.launch_at)))
        return reports

    # --- MarketData ----------------------------------------------------------------------

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        spec = self._spec(symbol)
        if spec is None:
            raise NotFound(f"the paper exchange lists no {symbol}")
        return SymbolRules(symbol, spec.price_scale, spec.quantity_scale, spec.min_notional, self.scenario.taker_fee)

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        spec = self._spec(symbol)
        return None if spec is None else self._price_at(spec, self.clock.now())

    def ticks_between(self, after: datetime, until: datetime) -> list[PriceTick]:
        """Every scenario price point that falls in (after, until], in time order."""
        ticks = []
        for spec in self.scenario.listings:
            opened = open_time(spec)
            for point in spec.prices:
                at = opened + timedelta(seconds=float(point.t))
                if after < at <= until:
                    ticks.append(PriceTick(symbol_of(spec), point.price, at))
        return sorted(ticks, key=lambda t: (t.at, t.symbol.code))

    # --- ExchangeTrading -------------------------------------------------------------------

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        self.calls.append(f"prepare {symbol}")
        return None

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport:
        self.calls.append(f"buy {symbol} {quote_amount} {client_order_id}")
        lose_reply = self._misbehave(symbol, client_order_id)
        report = await self._broker.place_market_buy(symbol, quote_amount, client_order_id)
        return self._reply(report, lose_reply)

    async def place_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        """An IMMEDIATE_OR_CANCEL limit buy at `max_price` (see PaperBroker)."""
        self.calls.append(f"buy {symbol} {quote_amount} {client_order_id} ioc<={max_price}")
        lose_reply = self._misbehave(symbol, client_order_id)
        report = await self._broker.place_capped_buy(symbol, quote_amount, max_price, client_order_id)
        return self._reply(report, lose_reply)

    async def place_market_sell(self, symbol: Symbol, quantity: Decimal, client_order_id: ClientOrderId) -> OrderReport:
        self.calls.append(f"sell {symbol} {quantity} {client_order_id}")
        lose_reply = self._misbehave(symbol, client_order_id)
        report = await self._broker.place_market_sell(symbol, quantity, client_order_id)
        return self._reply(report, lose_reply)

    async def query_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        self.calls.append(f"query {symbol} {client_order_id}")
        return await self._broker.query_order(symbol, client_order_id)

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        self.calls.append(f"cancel {symbol} {client_order_id}")
        return await self._broker.cancel_order(symbol, client_order_id)

    async def open_orders(self, symbol: Symbol | None = None) -> list[OrderReport]:
        return await self._broker.open_orders(symbol)

    @property
    def orders(self) -> list[OrderReport]:
        """Every order the paper exchange has accepted, in the order it accepted them."""
        return self._broker.orders

    # --- inside ------------------------------------------------------------------------------

    def _spec(self, symbol: Symbol) -> ListingSpec | None:
        return self._by_symbol.get(symbol.code)

    @staticmethod
    def _price_at(spec: ListingSpec, now: datetime) -> Decimal | None:
        opened = open_time(spec)
        if now < opened:
            return None
        price = None
        for point in spec.prices:
            if opened + timedelta(seconds=float(point.t)) <= now:
                price = point.price
        return price

    def _misbehave(self, symbol: Symbol, client_order_id: ClientOrderId) -> bool:
        """Apply the next queued fault. True when the reply must be lost after acceptance."""
        if self._spec(symbol) is None:
            raise OrderRefused(f"invalid symbol {symbol}", "30014")
        if self._broker.knows(client_order_id):
            raise OrderAlreadyExists(f"an order with client id {client_order_id} already exists")
        fault = self.faults.popleft() if self.faults else None
        if fault is Fault.RATE_LIMITED:
            raise RateLimited("too many requests", timedelta(milliseconds=100))
        if fault is Fault.TIMEOUT_BEFORE_ACCEPT:
            raise AmbiguousOutcome("timed out waiting for the exchange")
        if fault is Fault.INSUFFICIENT_BALANCE:
            raise OrderRefused("insufficient balance", "10101")
        return fault is Fault.TIMEOUT_AFTER_ACCEPT

    @staticmethod
    def _reply(report: OrderReport, lose_reply: bool) -> OrderReport:
        if lose_reply:
            raise AmbiguousOutcome("the reply was lost after the exchange accepted the order")
        return report
