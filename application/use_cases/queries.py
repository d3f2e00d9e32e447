"""Queries over the trade history: portfolio, one target's history, the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from application.errors import NotFound
from application.ports import Clock, EventStore, MarketData, ReadModels
from application.trade_book import PositionView, TargetView, TradeBook
from application.views import ListingView
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


# --- per-user queries (the HTTP API): read models, never a fold of the whole history ---------

@dataclass(frozen=True, slots=True)
class UserPortfolio:
    """A user's positions and totals, in the quote asset, from the read models."""

    positions: list[PositionView]
    open_positions: int
    invested: Decimal
    open_exposure: Decimal
    realised_pnl: Decimal
    fees: Decimal
    halted: str | None
    as_of_position: int


class GetUserPortfolio:
    """One user's portfolio from the projections: one query for the positions, one for the halt."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models

    async def __call__(self, user_id: str) -> UserPortfolio:
        positions = await self.read_models.positions(user_id)
        invested = open_exposure = realised = fees = Decimal(0)
        open_count = 0
        for p in positions:
            invested += p.cost
            realised += p.realised_pnl
            fees += p.fees
            if p.status != "closed":
                open_count += 1
                open_exposure += p.remaining_cost
        halted = await self.read_models.halted(user_id)
        checkpoint = await self.read_models.checkpoint()
        return UserPortfolio(positions, open_count, invested, open_exposure, realised, fees, halted, checkpoint)


class GetUserTargetHistory:
    """The recorded events of one of the user's targets and of its position; another user's
    target is as unknown as a missing one."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str, target_id: str) -> list[Recorded]:
        events = await self.store.load(target_stream(target_id))
        if not events or events[0].user_id != user_id:
            raise NotFound(f"unknown target id: {target_id}")
        events += await self.store.load(position_stream(position_id_for(target_id)))
        return sorted(events, key=lambda r: r.position or 0)


class GetUserAuditTrail:
    """The events recorded for one user, in global order, paged by position."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __call__(self, user_id: str, after: int = 0, limit: int = 100) -> list[Recorded]:
        return await self.store.read_user(user_id, after=after, limit=limit)


class ListListings:
    """Listings the calendar announced, soonest launch first; with `upcoming_only`, those not
    launched yet (the calendar). Follows the store through a shared trade book."""

    def __init__(self, store: EventStore, book: TradeBook, clock: Clock) -> None:
        self.store, self.book, self.clock = store, book, clock

    async def __call__(self, upcoming_only: bool = False, limit: int = 200) -> list[ListingView]:
        await self.book.catch_up(self.store)
        now = self.clock.now()
        found = [v for v in self.book.listings.values() if not upcoming_only or v.launch_at > now]
        found.sort(key=lambda v: (v.launch_at, v.coin_id))
        return found[:limit]
