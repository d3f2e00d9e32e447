"""`sniper demo` with DATABASE_URL on the local Postgres: the same code, another database."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
import pytest

from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from adapters.paper.scenario import load_scenario
from application.trade_book import TradeBook
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.demo import run_demo

pytestmark = pytest.mark.postgres


@pytest.fixture
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    name = f"sniper_demo_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_demo_on_postgres_records_what_it_prints(fresh_database: str) -> None:
    settings = load_settings({"DATABASE_URL": fresh_database})
    out = io.StringIO()
    report = await run_demo(settings, load_scenario(BUNDLED_SCENARIO), "pg1", out)
    assert {r.outcome for r in report.rows} == {"closed", "failed", "expired"}
    engine = make_engine(fresh_database)
    try:
        store = SqlEventStore(engine)
        assert await store.last_position() >= report.events
        book = TradeBook()
        await book.catch_up(store)
    finally:
        await engine.dispose()
    assert sum((p.realised_pnl for p in book.positions.values()), Decimal(0)) == report.realised_pnl
    assert "Final P&L" in out.getvalue()
