"""The emergency stop: activate (cancel open orders, refuse new ones) and clear."""

from __future__ import annotations

from dataclasses import dataclass, field

from application import repository
from application.errors import ExchangeError
from application.ports import Clock, EventStore, ExchangeTrading
from application.trade_book import TradeBook
from domain.events import Cause
from domain.safety import SafetySwitch, safety_stream


@dataclass(slots=True)
class EmergencyStopResult:
    scope: str
    cancelled_orders: list[str] = field(default_factory=list)
    cancel_failures: list[str] = field(default_factory=list)


async def _switch(store: EventStore, scope: str) -> SafetySwitch:
    found = await repository.find(store, SafetySwitch, safety_stream(scope))
    return found if found is not None else SafetySwitch.for_scope(scope)


class ActivateEmergencyStop:
    """Halt trading for one user or for everyone ('global'). The halt is recorded first,
    so no new order starts while the open ones are being cancelled."""

    def __init__(self, store: EventStore, exchange: ExchangeTrading, clock: Clock, book: TradeBook) -> None:
        self.store, self.exchange, self.clock, self.book = store, exchange, clock, book

    async def __call__(self, scope: str, reason: str, by: str) -> EmergencyStopResult:
        switch = await _switch(self.store, scope)
        now = self.clock.now()
        switch.activate(reason, by, Cause(now, f"emergency-stop-{scope}"))
        await repository.save(self.store, switch)
        await self.book.catch_up(self.store)
        return await self.cancel_open_orders(scope)

    async def cancel_open_orders(self, scope: str) -> EmergencyStopResult:
        """Cancel the account's open orders (also run by the worker when it sees a stop that
        was recorded elsewhere, e.g. through the API, which holds no exchange session)."""
        result = EmergencyStopResult(scope)
        for order in await self.exchange.open_orders():
            try:
                await self.exchange.cancel_order(order.symbol, order.client_order_id)
                result.cancelled_orders.append(order.client_order_id.value)
            except ExchangeError as exc:
                result.cancel_failures.append(f"{order.client_order_id}: {exc}")
        return result


class ClearEmergencyStop:
    def __init__(self, store: EventStore, clock: Clock, book: TradeBook) -> None:
        self.store, self.clock, self.book = store, clock, book

    async def __call__(self, scope: str, by: str) -> None:
        switch = await _switch(self.store, scope)
        switch.clear(by, Cause(self.clock.now(), f"emergency-stop-{scope}"))
        await repository.save(self.store, switch)
        await self.book.catch_up(self.store)
