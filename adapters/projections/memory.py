"""ReadModels in memory: the trade book itself, the reference the SQL projections must equal."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date

from application.ports import EventStore
from application.trade_book import TradeBook
from application.views import DailyPnl, PositionView, TargetView, TradeRecord


class InMemoryReadModels:
    """ReadModels over a TradeBook that follows `store`.

    With `catch_up_on_read` (the default) every query first applies what the store recorded
    since, so answers are never behind; without it the book moves only on `catch_up()`, as
    the SQL projections move only when their projector runs.
    """

    def __init__(self, store: EventStore, book: TradeBook | None = None, catch_up_on_read: bool = True) -> None:
        self._store = store
        self._book = book if book is not None else TradeBook()
        self._catch_up_on_read = catch_up_on_read

    @property
    def book(self) -> TradeBook:
        return self._book

    async def catch_up(self) -> int:
        """Apply what the store recorded after the book's position; returns how many events."""
        return await self._book.catch_up(self._store)

    async def _fresh(self) -> TradeBook:
        if self._catch_up_on_read:
            await self._book.catch_up(self._store)
        return self._book

    # --- ReadModels ------------------------------------------------------------------------

    async def positions(self, user_id: str, open_only: bool = False) -> list[PositionView]:
        book = await self._fresh()
        # Copies, as the SQL read models give: a caller cannot change the book behind its back.
        return [
            replace(p, exits=list(p.exits))
            for p in book.positions.values()
            if p.user_id == user_id and not (open_only and p.status == "closed")
        ]

    async def targets(self, user_id: str, statuses: Collection[str] | None = None) -> list[TargetView]:
        book = await self._fresh()
        return [
            replace(t) for t in book.targets.values()
            if t.user_id == user_id and (statuses is None or t.status in statuses)
        ]

    async def daily_pnl(self, user_id: str, day_from: date, day_to: date) -> list[DailyPnl]:
        book = await self._fresh()
        return [d for d in book.daily_pnl() if d.user_id == user_id and day_from <= d.day <= day_to]

    async def trade_history(
        self, user_id: str, limit: int = 100, before_position: int | None = None,
    ) -> list[TradeRecord]:
        book = await self._fresh()
        found: list[TradeRecord] = []
        for trade in reversed(book.trades):
            if len(found) >= limit:
                break
            if trade.user_id == user_id and (before_position is None or trade.position < before_position):
                found.append(trade)
        return found

    async def halted(self, user_id: str) -> str | None:
        return (await self._fresh()).halted(user_id)

    async def checkpoint(self) -> int:
        return (await self._fresh()).position
