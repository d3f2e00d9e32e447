"""Targets say whether they trade live or paper (issue 12): proj_targets.live, projected as the
trade book folds it, and filled by migration 0006 for rows projected before it existed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.projections import SqlReadModels, run_projector
from application import repository
from application.ports import EventStore
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from domain.values import Symbol

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def record_targets(store: EventStore) -> None:
    for target_id, live in (("t-live", True), ("t-paper", False)):
        target = SnipeTarget.create(target_id, "alice", f"coin-{target_id}", Symbol("NEW", "USDT"), AT, Decimal(10),
                                    PRESETS["balanced"], Decimal(1), live, Cause(AT, target_id))
        await repository.save(store, target)


async def test_the_projection_says_which_target_is_live(engine: AsyncEngine) -> None:
    from adapters.eventstore.migrate import upgrade

    await upgrade(engine)
    store = SqlEventStore(engine)
    await record_targets(store)
    await run_projector(engine)
    views = await SqlReadModels(engine).targets("alice")
    assert {v.target_id: v.live for v in views} == {"t-live": True, "t-paper": False}


async def test_rows_projected_before_0006_learn_whether_they_are_live(engine: AsyncEngine) -> None:
    from alembic import command
    from alembic.config import Config

    import adapters.eventstore.migrate as migrate

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__file__).resolve().parent / "migrations"))
    async with engine.begin() as conn:
        def to_0005(sync_conn: Any) -> None:
            config.attributes["connection"] = sync_conn
            command.upgrade(config, "0005")

        await conn.run_sync(to_0005)
    store = SqlEventStore(engine)
    await record_targets(store)
    async with engine.begin() as conn:  # as the previous release projected them: no live column
        for target_id in ("t-live", "t-paper"):
            await conn.execute(text(
                "INSERT INTO proj_targets (target_id, user_id, coin_id, symbol, launch_at, quote_amount, exit_strategy,"
                " status, confidence, execute_at, reason, first_event) VALUES (:t, 'alice', :c, 'NEWUSDT', NULL, '10',"
                " 'balanced', 'watching', '1', NULL, NULL, 1)"), {"t": target_id, "c": f"coin-{target_id}"})
    assert await migrate.upgrade(engine) == ("0005", migrate.head_revision())
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT target_id, live FROM proj_targets ORDER BY target_id"))).all()
    assert [(r[0], bool(r[1])) for r in rows] == [("t-live", True), ("t-paper", False)]
