"""A buy's fee learnt after its fill (EntryFeeLearnt, issue 14) in the read models: the position's
quantity, cost, fees and P&L show it; the trade history has it as its own line (side FEE, after the
BUY recorded without it); a closed position's quote fee counts in the P&L of the day it was learnt;
the trade book knows which positions' fees are still unknown. The SQL projection equals the book's
fold, also when the fee comes in a later batch than its position, on a day its row was not loaded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.projections import InMemoryReadModels, SqlReadModels, run_projector
from application import repository
from application.ports import EventStore
from application.trade_book import TradeBook
from application.views import BUY, ENTRY_FEE, SELL, WRITE_OFF
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position
from domain.values import Symbol
from tests.adapters.test_projections import DAY1, DAY2, D, assert_same_views, cause, reference

NEW = Symbol("NEW", "USDT")
BASE_FEE, QUOTE_FEE = D("0.016665"), D("0.0049995")


@pytest.fixture
async def engine(engine: AsyncEngine) -> AsyncEngine:
    """The shared engine (tests/adapters/conftest.py), migrated."""
    await upgrade(engine)
    return engine


def bought(target_id: str, user: str) -> Position:
    """33.33 NEW for 9.999 USDT on DAY1, the fee unknown (the lookup had no budget)."""
    return Position.open(target_id, user, NEW, D("0.3"), D("33.33"), D("9.999"), D(0), "", 2, PRESETS["balanced"],
                         cause(DAY1))


async def record(store: EventStore, user: str = "erin") -> tuple[str, str, str]:
    """Three positions with their fee unknown at the fill: one still open learns its fee in the coin; one
    sold (stop-loss, the rest written off) learns a quote fee on DAY2; one never learns it."""
    held = bought("t-held-" + user, user)
    await repository.save(store, held)
    sold = bought("t-sold-" + user, user)
    await repository.save(store, sold)
    unknown = bought("t-unknown-" + user, user)
    await repository.save(store, unknown)
    sold.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("33.31"), D("0.2")), cause(DAY1))
    sold.record_exit_fill(D("0.2"), D("33.31"), D("0.003331"), cause(DAY1 + timedelta(seconds=1)))
    sold.write_off("not in the account", cause(DAY1 + timedelta(seconds=1)))
    await repository.save(store, sold)
    held.learn_entry_fee(BASE_FEE, "NEW", cause(DAY1 + timedelta(seconds=5)))
    await repository.save(store, held)
    sold.learn_entry_fee(QUOTE_FEE, "USDT", cause(DAY2))
    await repository.save(store, sold)
    return held.position_id, sold.position_id, unknown.position_id


async def test_the_book_shows_the_learnt_fees() -> None:
    store = InMemoryEventStore()
    held, sold, unknown = await record(store)
    views = InMemoryReadModels(store)
    positions = {p.position_id: p for p in await views.positions("erin")}

    assert (positions[held].quantity, positions[held].remaining, positions[held].cost, positions[held].fees) == (
        D("33.313335"), D("33.313335"), D("9.999"), 0)
    closed = await repository.get(store, Position, f"position-{sold}")
    assert (positions[sold].cost, positions[sold].fees, positions[sold].remaining_cost) == (
        D("9.999") + QUOTE_FEE, D("0.003331") + QUOTE_FEE, 0)
    assert positions[sold].realised_pnl == closed.realised_pnl
    assert [(d.day, d.realised_pnl) for d in await views.daily_pnl("erin", DAY1.date(), DAY2.date())] == [
        (DAY1.date(), closed.realised_pnl + QUOTE_FEE), (DAY2.date(), -QUOTE_FEE)]
    history = await views.trade_history("erin")
    assert [(t.side, t.position_id) for t in history] == [
        (ENTRY_FEE, sold), (ENTRY_FEE, held), (WRITE_OFF, sold), (SELL, sold), (BUY, unknown), (BUY, sold),
        (BUY, held)]
    fee_of_sold, fee_of_held = history[0], history[1]
    assert (fee_of_held.quantity, fee_of_held.quote_amount, fee_of_held.fee, fee_of_held.fee_asset,
            fee_of_held.realised_pnl, fee_of_held.client_order_id) == (BASE_FEE, 0, BASE_FEE, "NEW", 0, None)
    assert (fee_of_sold.quantity, fee_of_sold.quote_amount, fee_of_sold.fee, fee_of_sold.realised_pnl) == (
        0, QUOTE_FEE, QUOTE_FEE, -QUOTE_FEE)
    book = TradeBook()
    await book.catch_up(store)
    assert list(book.entry_fees_unknown) == [unknown]


@pytest.mark.parametrize("batch", [1, 3, 500])
async def test_the_sql_projection_shows_them_as_the_book_does(engine: AsyncEngine, batch: int) -> None:
    store = SqlEventStore(engine)
    await record(store)
    await run_projector(engine, batch=batch)
    await assert_same_views(SqlReadModels(engine), reference(store))
