"""Queries over the trade history: portfolio, one target's history, the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from application.errors import NotFound
from application.ports import EventStore, MarketData
from application.trade_book import PositionView, TargetView, TradeBook
from domain.events import Recorded
from domain.position import position_id_for, position_stream
from domain.target import target_stream
from domain.values import Symbol, quantize_money


@dataclass(frozen=True, slots=True)
class PortfolioLine:
    target: TargetView
    position: PositionView | None
    unrealised_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class Portfolio:
    lines: list[PortfolioLine]
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    invested: Decimal


class GetPortfolio:
    """Every target of a user (or of all users) with its position and P&L."""

    def __init__(self, store: EventStore, market: MarketData | None = None) -> None:
        self.store, self.market = store, market

    async def __call__(self, user_id: str | None = None) -> Portfolio:
        book = TradeBook()
        await book.catch_up(self.store)
        lines = []
        realised = unrealised = invested = Decimal(0)
        for target in book.targets.values():
            if user_id is not None and target.user_id != user_id:
                continue
            position = book.positions.get(position_id_for(target.target_id))
            upnl = None
            if position is not None:
                realised += position.realised_pnl
                invested += position.cost
                if position.status != "closed" and self.market is not None:
                    price = await self.market.last_price(Symbol.parse(position.symbol, position.quote_asset))
                    if price is not None:
                        upnl = quantize_money(position.remaining * price - position.remaining_cost)
                        unrealised += upnl
            lines.append(PortfolioLine(target, position, upnl))
        return Portfolio(lines, realised, unrealised, invested)


class GetTargetHistory:
    """The recorded events of one target and of the position it opened, in order."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, target_id: str) -> list[Recorded]:
        events = await self.store.load(target_stream(target_id))
        if not events:
            raise NotFound(f"unknown target id: {target_id}")
        events += await self.store.load(position_stream(position_id_for(target_id)))
        return sorted(events, key=lambda r: r.position or 0)


class GetAuditTrail:
    """Every recorded event in global order, optionally one user's (plus system events)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str | None = None, after: int = 0, limit: int | None = None) -> list[Recorded]:
        events = await self.store.read_all(after=after)
        if user_id is not None:
            events = [e for e in events if e.user_id in (user_id, "system", "global")]
        return events[:limit] if limit is not None else events
