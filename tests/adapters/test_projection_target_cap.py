"""The entry price cap (issue 14) in the persistent projection: proj_targets.max_entry_price
(migration 0007), projected as the trade book folds it, NULL for a market buy."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.projections import SqlReadModels, run_projector
from application import repository
from application.trade_book import TradeBook
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from domain.values import Symbol

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def test_the_projection_shows_each_targets_cap_as_the_book_does(engine: AsyncEngine) -> None:
    from adapters.eventstore.migrate import upgrade

    await upgrade(engine)
    store = SqlEventStore(engine)
    for target_id, cap in (("t-capped", Decimal("0.00012345")), ("t-market", None), ("t-amended", Decimal("2"))):
        target = SnipeTarget.create(target_id, "alice", f"coin-{target_id}", Symbol("NEW", "USDT"), AT, Decimal(10),
                                    PRESETS["balanced"], Decimal(1), False, Cause(AT, target_id), cap)
        if target_id == "t-amended":
            target.amend(
                Decimal(12), PRESETS["balanced"], "alice", Cause(AT, target_id), max_entry_price=Decimal("1.5")
            )
        await repository.save(store, target)
    await run_projector(engine)
    views = await SqlReadModels(engine).targets("alice")
    assert {v.target_id: v.max_entry_price for v in views} == {
        "t-capped": Decimal("0.00012345"), "t-market": None, "t-amended": Decimal("1.5"),
    }
    book = TradeBook()
    await book.catch_up(store)
    assert sorted(views, key=lambda v: v.target_id) == sorted(book.targets.values(), key=lambda v: v.target_id)
