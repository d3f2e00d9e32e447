"""PaperBroker: the trading port on paper, filling market orders at a price source's price.

A capped buy (IMMEDIATE_OR_CANCEL limit at the cap) fills whole at the price when the price is at
or below the cap, and is cancelled with nothing bought when it is above: paper has no order book,
so a fill is never partial here.

The price source is any MarketData: a replay scenario (PaperExchange) or the real exchange's
public prices (`sniper snipe` without --live). Fees are the pair's taker fee, charged in the
quote asset. No money moves.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from application.errors import NotFound, NotYetOpen, OrderAlreadyExists, OrderRefused
from application.ports import Clock, MarketData, OrderReport, OrderSide, OrderStatus, SymbolRules
from domain.values import ClientOrderId, Symbol, round_down_to_scale


class PaperBroker:
    def __init__(self, market: MarketData, clock: Clock, id_prefix: str = "paper") -> None:
        self.market = market
        self.clock = clock
        self.id_prefix = id_prefix
        self._orders: dict[str, OrderReport] = {}
        self._sequence = 0

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        return None  # paper fills follow the one clock there is

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport:
        rules, price = await self._tradable(symbol, client_order_id)
        quantity = round_down_to_scale(quote_amount / price, rules.quantity_scale)
        return self._fill(rules, symbol, OrderSide.BUY, client_order_id, quantity, price)

    async def place_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        rules, price = await self._tradable(symbol, client_order_id)
        limit = round_down_to_scale(max_price, rules.price_scale)
        quantity = round_down_to_scale(quote_amount / limit, rules.quantity_scale) if limit > 0 else Decimal(0)
        if quantity <= 0 or quantity * limit < rules.min_notional:
            raise OrderRefused(
                f"refused before sending: {quantity} x {limit} is below the minimum order of {rules.min_notional}",
                "30002",
            )
        if price <= limit:
            return self._fill(rules, symbol, OrderSide.BUY, client_order_id, quantity, price)
        # Immediate or cancel: nothing offered at or below the limit, nothing rests.
        self._sequence += 1
        report = OrderReport(
            symbol=symbol, client_order_id=client_order_id, exchange_order_id=f"{self.id_prefix}-{self._sequence}",
            side=OrderSide.BUY, status=OrderStatus.CANCELED, executed_quantity=Decimal(0), executed_quote=Decimal(0),
            average_price=limit, created_at=self.clock.now(),
        )
        self._orders[client_order_id.value] = report
        return report

    async def place_market_sell(self, symbol: Symbol, quantity: Decimal, client_order_id: ClientOrderId) -> OrderReport:
        rules, price = await self._tradable(symbol, client_order_id)
        return self._fill(rules, symbol, OrderSide.SELL, client_order_id, quantity, price)

    async def query_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        report = self._orders.get(client_order_id.value)
        return report if report is not None and report.symbol == symbol else None

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        return None  # market orders fill at once on paper: nothing is ever left to cancel

    async def open_orders(self, symbol: Symbol | None = None) -> list[OrderReport]:
        return [o for o in self._orders.values() if not o.status.is_final and (symbol is None or o.symbol == symbol)]

    def knows(self, client_order_id: ClientOrderId) -> bool:
        return client_order_id.value in self._orders

    @property
    def orders(self) -> list[OrderReport]:
        """Every order accepted, in the order it was accepted."""
        return list(self._orders.values())

    async def _tradable(self, symbol: Symbol, client_order_id: ClientOrderId) -> tuple[SymbolRules, Decimal]:
        if self.knows(client_order_id):
            raise OrderAlreadyExists(f"an order with client id {client_order_id} already exists")
        try:
            rules = await self.market.symbol_rules(symbol)
        except NotFound:
            raise OrderRefused(f"invalid symbol {symbol}", "30014") from None
        price = await self.market.last_price(symbol)
        if price is None:
            raise NotYetOpen(f"symbol {symbol} is not open for API trading yet")
        return rules, price

    def _fill(
        self, rules: SymbolRules, symbol: Symbol, side: OrderSide, coid: ClientOrderId, quantity: Decimal,
        price: Decimal,
    ) -> OrderReport:
        notional = quantity * price
        if quantity <= 0 or notional < rules.min_notional:
            raise OrderRefused(f"order value {notional} is below the minimum {rules.min_notional}", "30002")
        self._sequence += 1
        report = OrderReport(
            symbol=symbol,
            client_order_id=coid,
            exchange_order_id=f"{self.id_prefix}-{self._sequence}",
            side=side,
            status=OrderStatus.FILLED,
            executed_quantity=quantity,
            executed_quote=notional,
            average_price=price,
            fee=notional * rules.taker_fee,
            fee_asset=symbol.quote,
            created_at=self.clock.now(),
        )
        self._orders[coid.value] = report
        return report
