"""Schema migrations: idempotent, refuse to run on an old schema, match the live tables."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.migrate import (
    SchemaOutOfDate,
    SchemaStatus,
    ensure_schema,
    head_revision,
    schema_state,
    upgrade,
)
from adapters.eventstore.schema import metadata
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine
from domain.events import Cause
from domain.safety import SafetySwitch
from entrypoints.cli import main


def _an_event_batch() -> list:
    switch = SafetySwitch.for_scope("global")
    switch.activate("test", "ops", Cause(datetime(2026, 11, 25, tzinfo=UTC), "c"))
    return switch.pending


async def test_an_empty_database_is_refused_for_reading_and_initialised_for_writing(engine: AsyncEngine) -> None:
    assert (await schema_state(engine)).status is SchemaStatus.EMPTY
    with pytest.raises(SchemaOutOfDate, match="no trade history"):
        await ensure_schema(engine, initialise_empty=False)
    await ensure_schema(engine, initialise_empty=True)
    state = await schema_state(engine)
    assert (state.status, state.revision) == (SchemaStatus.CURRENT, head_revision())


async def test_upgrade_is_idempotent(engine: AsyncEngine) -> None:
    assert await upgrade(engine) == (None, head_revision())
    assert await upgrade(engine) == (head_revision(), head_revision())


async def test_the_migrated_schema_is_exactly_the_one_the_store_uses(engine: AsyncEngine) -> None:
    await upgrade(engine)

    def diff(conn):  # noqa: ANN001, ANN202
        return compare_metadata(MigrationContext.configure(conn), metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_a_store_from_before_migrations_must_be_migrated_and_keeps_its_events(engine: AsyncEngine) -> None:
    store = SqlEventStore(engine)
    await store.create_schema()  # the tables without a recorded revision
    await store.append(_an_event_batch())
    with pytest.raises(SchemaOutOfDate, match="run `sniper migrate`"):
        await ensure_schema(engine, initialise_empty=True)
    await upgrade(engine)
    await ensure_schema(engine, initialise_empty=False)
    assert await store.last_position() == 1


async def test_a_schema_from_a_newer_program_is_refused(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaOutOfDate, match="newer than this program"):
        await ensure_schema(engine, initialise_empty=True)


async def test_cli_refuses_an_old_schema_in_one_line_until_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "old.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    eng = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        await SqlEventStore(eng).create_schema()
    finally:
        await eng.dispose()

    def cli(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()

    import asyncio
    import threading

    # main() runs its own event loop: call it from a thread, away from the test's loop.
    result: dict[str, tuple[int, str, str]] = {}

    def run(name: str, *argv: str) -> None:
        t = threading.Thread(target=lambda: result.__setitem__(name, cli(*argv)))
        t.start()
        t.join()

    run("history", "history", "--all")
    code, _, err = result["history"]
    assert code == 2 and err.count("\n") == 1 and "run `sniper migrate`" in err
    run("migrate", "migrate")
    assert result["migrate"][0] == 0 and f"to {head_revision()}" in result["migrate"][1]
    run("again", "migrate")
    assert result["again"][1] == f"schema already at {head_revision()}\n"
    run("history2", "history", "--all")
    assert result["history2"][0] == 0
    await asyncio.sleep(0)
