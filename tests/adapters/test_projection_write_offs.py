"""A write-off (DustWrittenOff) in the trade history: its own side, WRITE_OFF, not a SELL at
price 0 with an empty client order id; the SQL projection equals the trade book's fold, and a
database projected before migration 0005 is rewritten to match."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.migrate import upgrade
from adapters.eventstore.schema import proj_trades
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.projections import InMemoryReadModels, SqlReadModels, run_projector
from application import repository
from application.ports import EventStore
from application.trade_book import TradeBook
from application.views import BUY, SELL, WRITE_OFF
from domain.exit_plans import PRESETS
from domain.position import ExitDecision, ExitReason, Position
from domain.values import Symbol
from tests.adapters.test_projections import DAY1, D, assert_same_views, cause, reference


@pytest.fixture
async def engine(engine: AsyncEngine) -> AsyncEngine:
    """The shared engine (tests/adapters/conftest.py), migrated."""
    await upgrade(engine)
    return engine


async def record_a_write_off(store: EventStore, user: str = "dave") -> None:
    """33.33 NEW bought, 0.016665 of it MEXC's fee: the stop-loss sells 33.31, 0.003335 is dust."""
    pos = Position.open("t-dust-" + user, user, Symbol("NEW", "USDT"), D("0.3"), D("33.33"), D("9.999"),
                        D("0.016665"), "NEW", 2, PRESETS["balanced"], cause(DAY1))
    await repository.save(store, pos)
    pos.submit_exit(ExitDecision(ExitReason.STOP_LOSS, None, D("33.31"), D("0.2")), cause(DAY1))
    pos.record_exit_fill(D("0.2"), D("33.31"), D("0.003331"), cause(DAY1 + timedelta(seconds=1)), quantity_scale=2)
    await repository.save(store, pos)


async def test_a_write_off_is_no_sale_in_the_trade_history() -> None:
    store = InMemoryEventStore()
    await record_a_write_off(store)
    history = await InMemoryReadModels(store).trade_history("dave")
    assert [(t.side, t.event_type) for t in history] == [
        (WRITE_OFF, "DustWrittenOff"), (SELL, "StopLossHit"), (BUY, "PositionOpened")]
    write_off, sale = history[0], history[1]
    assert (write_off.quantity, write_off.price, write_off.quote_amount, write_off.fee) == (D("0.003335"), 0, 0, 0)
    assert write_off.client_order_id is None and sale.client_order_id
    assert write_off.realised_pnl < 0 and write_off.fee_asset == "USDT"
    book = TradeBook()
    await book.catch_up(store)
    assert book.positions[write_off.position_id].exits == ["StopLossHit", "DustWrittenOff"]


async def test_the_sql_projection_shows_it_as_the_book_does(engine: AsyncEngine) -> None:
    store = SqlEventStore(engine)
    await record_a_write_off(store)
    await run_projector(engine, batch=4)
    sql = SqlReadModels(engine)
    await assert_same_views(sql, reference(store))
    [write_off] = [t for t in await sql.trade_history("dave") if t.event_type == "DustWrittenOff"]
    assert (write_off.side, write_off.client_order_id) == (WRITE_OFF, None)


async def test_rows_projected_before_0005_are_rewritten_as_the_book_folds_them(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    import adapters.eventstore.migrate as migrate

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).resolve().parent / "migrations"))
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        # Project with today's code, then take the schema back to 0004: 0005's downgrade writes the
        # rows as the release before it projected them (a SELL with no client order id), and later
        # migrations' downgrades drop what that release did not have.
        await migrate.upgrade(eng)
        store = SqlEventStore(eng)
        await record_a_write_off(store)
        await run_projector(eng)
        async with eng.begin() as conn:
            def to_0004(sync_conn: Any) -> None:
                config.attributes["connection"] = sync_conn
                command.downgrade(config, "0004")

            await conn.run_sync(to_0004)
        async with eng.connect() as conn:
            rows = (await conn.execute(select(proj_trades.c.side, proj_trades.c.client_order_id)
                                       .where(proj_trades.c.event_type == "DustWrittenOff"))).all()
        assert [tuple(r) for r in rows] == [(SELL, "")]
        assert await migrate.upgrade(eng) == ("0004", migrate.head_revision())
        async with eng.connect() as conn:
            rows = (await conn.execute(select(proj_trades.c.side, proj_trades.c.client_order_id)
                                       .where(proj_trades.c.event_type == "DustWrittenOff"))).all()
        assert [tuple(r) for r in rows] == [(WRITE_OFF, None)]
        await assert_same_views(SqlReadModels(eng), reference(store))
    finally:
        await eng.dispose()
