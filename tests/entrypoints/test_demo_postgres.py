"""`sniper demo` with DATABASE_URL on the local Postgres: the same code, another database."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.paper.scenario import load_scenario
from application.trade_book import TradeBook
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.demo import run_demo

pytestmark = pytest.mark.postgres


async def test_demo_on_postgres_records_what_it_prints(fresh_postgres_database: str) -> None:
    settings = load_settings({"DATABASE_URL": fresh_postgres_database})
    out = io.StringIO()
    report = await run_demo(settings, load_scenario(BUNDLED_SCENARIO), "pg1", out)
    assert {r.outcome for r in report.rows} == {"closed", "failed", "expired"}
    engine = make_engine(fresh_postgres_database)
    try:
        store = SqlEventStore(engine)
        assert await store.last_position() >= report.events
        book = TradeBook()
        await book.catch_up(store)
    finally:
        await engine.dispose()
    assert sum((p.realised_pnl for p in book.positions.values()), Decimal(0)) == report.realised_pnl
    assert "Final P&L" in out.getvalue()
