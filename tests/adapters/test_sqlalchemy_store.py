"""What only the SQL store has: schema creation, the unique-constraint backstop, UTC storage,
engines and SQLite URLs. The shared behaviour is in test_event_store_contract.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.eventstore import sqlalchemy_store
from adapters.eventstore.schema import events
from adapters.eventstore.sqlalchemy_store import SqlEventStore, make_engine, sqlite_path
from application.errors import ConcurrencyConflict
from domain.events import Recorded, SnipeFailed
from tests.adapters.sql_support import empty_database
from tests.conftest import POSTGRES_URL

T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


def rec(stream_id: str, version: int, n: int = 0, at: datetime = T0) -> Recorded:
    return Recorded(stream_id, version, at, "user-1", "corr-1", SnipeFailed(f"t{n}", f"reason {n}"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sql_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlEventStore]:
    async with empty_database(request.param, request, tmp_path, "sqlstore") as (url, engine_options):
        engine = make_engine(url, **engine_options)
        try:
            store = SqlEventStore(engine)
            await store.create_schema()
            yield store
        finally:
            await engine.dispose()


async def test_create_schema_is_idempotent_and_keeps_the_history(sql_store: SqlEventStore) -> None:
    stored = await sql_store.append([rec("a", 1)])
    await sql_store.create_schema()
    await sql_store.create_schema()
    assert await sql_store.load("a") == stored


async def test_the_unique_constraint_turns_a_lost_race_into_a_conflict(
    sql_store: SqlEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer whose version check ran before the other writer committed still loses cleanly."""
    [original] = await sql_store.append([rec("a", 1, n=1)])
    real_versions = sqlalchemy_store._stream_versions
    calls = 0

    async def stale_then_real(conn: Any, stream_ids: list[str]) -> dict[str, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {}  # what the writer saw before "a" got its first event
        return await real_versions(conn, stream_ids)

    monkeypatch.setattr(sqlalchemy_store, "_stream_versions", stale_then_real)

    with pytest.raises(ConcurrencyConflict) as raised:
        await sql_store.append([rec("b", 1, n=2), rec("a", 1, n=3)])

    assert isinstance(raised.value.__cause__, IntegrityError)
    assert (raised.value.stream_id, raised.value.expected_version, raised.value.actual_version) == ("a", 0, 1)
    monkeypatch.undo()
    assert await sql_store.load("a") == [original]
    assert await sql_store.load("b") == []
    assert await sql_store.last_position() == original.position


async def test_times_are_stored_as_utc_and_come_back_aware(sql_store: SqlEventStore) -> None:
    at = datetime(2025, 6, 1, 1, 15, 0, 250000, tzinfo=timezone(timedelta(hours=-5)))
    await sql_store.append([rec("a", 1, at=at)])

    async with sql_store.engine.connect() as conn:
        raw = await conn.scalar(select(events.c.occurred_at))
    if raw.tzinfo is None:  # SQLite hands back naive wall-clock time: it must be UTC's
        assert raw == datetime(2025, 6, 1, 6, 15, 0, 250000)
    else:
        assert raw == at

    [loaded] = await sql_store.load("a")
    assert loaded.occurred_at == at
    assert loaded.occurred_at.tzinfo is not None and loaded.occurred_at.utcoffset() == timedelta(0)
    [via_all] = await sql_store.read_all()
    assert via_all.occurred_at.utcoffset() == timedelta(0)


async def test_a_naive_time_is_refused_before_anything_is_written(sql_store: SqlEventStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await sql_store.append([rec("a", 1), rec("b", 1, at=datetime(2025, 1, 1, 12, 0))])
    assert await sql_store.last_position() == 0


async def test_payload_is_json_text(sql_store: SqlEventStore) -> None:
    await sql_store.append([rec("a", 1, n=7)])
    async with sql_store.engine.connect() as conn:
        row = (await conn.execute(select(events.c.event_type, events.c.payload))).one()
    assert row.event_type == "SnipeFailed"
    assert row.payload == '{"target_id":"t7","reason":"reason 7"}'


async def test_make_engine_puts_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        assert not db.exists()  # nothing created before the first connection
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() >= 1000
        assert db.exists()
    finally:
        await engine.dispose()


async def test_make_engine_on_an_in_memory_sqlite(tmp_path: Path) -> None:
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        store = SqlEventStore(engine)
        await store.create_schema()
        stored = await store.append([rec("a", 1)])
        assert await store.load("a") == stored
    finally:
        await engine.dispose()
    assert list(tmp_path.iterdir()) == []


def test_make_engine_does_not_create_directories(tmp_path: Path) -> None:
    make_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'h.db'}")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:///var/history.db", Path("var/history.db")),
        ("sqlite+aiosqlite:////srv/sniper/history.db", Path("/srv/sniper/history.db")),
        ("sqlite:///relative.db", Path("relative.db")),
        ("sqlite+aiosqlite:///file:var/h.db?mode=ro&uri=true", Path("var/h.db")),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:mem?mode=memory&uri=true", None),
        (POSTGRES_URL, None),
    ],
)
def test_sqlite_path(url: str, expected: Path | None) -> None:
    assert sqlite_path(url) == expected
