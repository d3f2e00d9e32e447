"""Telemetry at the boundary: the exchange ports wrapped so every call is a span and a count.

`InstrumentedExchange` implements ExchangeTrading and MarketData, `InstrumentedListingFeed`
implements ListingFeed; each delegates to the real adapter inside a span named
"{system}.{call}" (e.g. "mexc.place_market_buy") with the symbol and client order id as
attributes (never keys or signatures). Accepted orders count into sniper_orders_total{side,
mode}, failed calls into sniper_exchange_errors_total{kind}. Anything else the wrapped
adapter offers (balances, test hooks) is reached through the wrapper unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from application.ports import CalendarEntry, ListingFeed, OrderReport, PresignedSends, SymbolRules, SymbolStateReport
from application.telemetry import EXCHANGE_ERRORS, ORDERS, Attribute, Telemetry
from domain.values import ClientOrderId, Symbol

T = TypeVar("T")


class _Instrumented:
    def __init__(self, inner: Any, telemetry: Telemetry, system: str) -> None:
        self.inner = inner
        self.telemetry = telemetry
        self.system = system

    def __getattr__(self, name: str) -> Any:
        # Only called for names this wrapper does not define: the adapter's extras.
        return getattr(self.inner, name)

    async def _call(self, name: str, call: Callable[[], Awaitable[T]], **attributes: Attribute) -> T:
        with self.telemetry.span(f"{self.system}.{name}", **attributes):
            try:
                return await call()
            except Exception as exc:
                self.telemetry.count(EXCHANGE_ERRORS, kind=type(exc).__name__)
                raise


class InstrumentedExchange(_Instrumented):
    """ExchangeTrading and MarketData, traced and counted. `mode` labels orders: paper or live.

    Order placement is on the snipe's critical path: its span is made after the call (timed
    from before it) when the telemetry can do that (OtelTelemetry.deferred_span), so the
    order's bytes are not held back by span bookkeeping; the span and count of a call that
    failed, at the event loop's next turn (deferred_span, count_later), so that the send that
    may follow at once (after a 10007 before the open) is not held back either.
    """

    def __init__(self, inner: Any, telemetry: Telemetry, *, mode: str, system: str = "mexc") -> None:
        super().__init__(inner, telemetry, system)
        self.mode = mode
        deferred = getattr(telemetry, "deferred_span", None)
        self._order_span: Callable[..., AbstractContextManager[dict[str, Attribute]]] = (
            deferred if deferred is not None else self._annotated_span
        )
        self._error_count: Callable[..., None] = getattr(telemetry, "count_later", telemetry.count)

    @contextmanager
    def _annotated_span(self, name: str, **attributes: Attribute) -> Iterator[dict[str, Attribute]]:
        with self.telemetry.span(name, **attributes):
            extra: dict[str, Attribute] = {}
            yield extra
            self.telemetry.annotate(**extra)

    async def _order(self, name: str, side: str, call: Callable[[], Awaitable[OrderReport]],
                     **attributes: Attribute) -> OrderReport:
        with self._order_span(f"{self.system}.{name}", **attributes) as extra:
            try:
                report = await call()
            except Exception as exc:
                self._error_count(EXCHANGE_ERRORS, kind=type(exc).__name__)
                raise
            extra["exchange_order_id"] = report.exchange_order_id
            extra["order_status"] = report.status.value
        self.telemetry.count(ORDERS, side=side, mode=self.mode)
        return report

    # --- ExchangeTrading -------------------------------------------------------------------

    async def prepare(self, symbol: Symbol) -> timedelta | None:
        return await self._call("prepare", lambda: self.inner.prepare(symbol), symbol=symbol.code)

    def arm_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal | None, client_order_id: ClientOrderId,
        send_at: datetime,
    ) -> None:
        """PresignedSends, when the wrapped exchange has it (else nothing to do)."""
        if isinstance(self.inner, PresignedSends):
            self.inner.arm_buy(symbol, quote_amount, max_price, client_order_id, send_at)

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport:
        return await self._order(
            "place_market_buy", "buy", lambda: self.inner.place_market_buy(symbol, quote_amount, client_order_id),
            symbol=symbol.code, client_order_id=client_order_id.value, quote_amount=str(quote_amount), mode=self.mode,
        )

    async def place_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        return await self._order(
            "place_capped_buy", "buy",
            lambda: self.inner.place_capped_buy(symbol, quote_amount, max_price, client_order_id),
            symbol=symbol.code, client_order_id=client_order_id.value, quote_amount=str(quote_amount),
            max_price=str(max_price), mode=self.mode,
        )

    async def place_market_sell(self, symbol: Symbol, quantity: Decimal, client_order_id: ClientOrderId) -> OrderReport:
        return await self._order(
            "place_market_sell", "sell", lambda: self.inner.place_market_sell(symbol, quantity, client_order_id),
            symbol=symbol.code, client_order_id=client_order_id.value, quantity=str(quantity), mode=self.mode,
        )

    async def query_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        return await self._call(
            "query_order", lambda: self.inner.query_order(symbol, client_order_id),
            symbol=symbol.code, client_order_id=client_order_id.value,
        )

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        return await self._call(
            "cancel_order", lambda: self.inner.cancel_order(symbol, client_order_id),
            symbol=symbol.code, client_order_id=client_order_id.value,
        )

    async def open_orders(self, symbol: Symbol | None = None) -> list[OrderReport]:
        if symbol is None:
            return await self._call("open_orders", lambda: self.inner.open_orders(None))
        return await self._call("open_orders", lambda: self.inner.open_orders(symbol), symbol=symbol.code)

    # --- MarketData ----------------------------------------------------------------------

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        return await self._call("symbol_rules", lambda: self.inner.symbol_rules(symbol), symbol=symbol.code)

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return await self._call("last_price", lambda: self.inner.last_price(symbol), symbol=symbol.code)


class InstrumentedListingFeed(_Instrumented):
    def __init__(self, inner: ListingFeed, telemetry: Telemetry, *, system: str = "mexc") -> None:
        super().__init__(inner, telemetry, system)

    async def calendar(self) -> list[CalendarEntry]:
        return await self._call("calendar", self.inner.calendar)

    async def symbol_states(self) -> list[SymbolStateReport]:
        return await self._call("symbol_states", self.inner.symbol_states)

