"""The event store on SQL: the same code on SQLite (aiosqlite) and Postgres (asyncpg).

Behaves like the in-memory reference store (adapters/eventstore/memory.py):

* `append` is all or nothing, in one transaction. Each stream's first new event must be the
  stream's current version + 1, otherwise ConcurrencyConflict and nothing is written.
* Appends are serialised per database (SQLite: BEGIN IMMEDIATE; Postgres: a transaction
  advisory lock), so positions are handed out in commit order and a reader paging with
  `read_all(after=...)` never skips an event that commits later with a lower position.
* The unique (stream_id, version) constraint is the last word: if a writer that does not take
  the lock slips in between the version check and the insert, the loser's IntegrityError is
  turned into ConcurrencyConflict.
* Times are stored as UTC and come back as aware UTC datetimes on both backends.

Positions may have gaps on Postgres (a sequence value is not given back when a transaction
rolls back); `last_position` is the highest position stored and paging works across gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from adapters.eventstore.codec import decode_event, encode_event
from adapters.eventstore.schema import STREAM_VERSION_CONSTRAINT, metadata
from adapters.eventstore.schema import events as events_table
from application.errors import ConcurrencyConflict
from domain.events import Recorded

# Any fixed 64-bit number: every appender of the database takes this transaction lock.
_PG_APPEND_LOCK = 0x6D657863_73746F72  # "mexcstor"

_SQLITE_BUSY_TIMEOUT_MS = 10_000


class SqlEventStore:
    """EventStore on an SQLAlchemy AsyncEngine (sqlite+aiosqlite or postgresql+asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"SqlEventStore supports SQLite and Postgres, not {self._dialect}")

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def create_schema(self) -> None:
        """Create the tables that are missing; safe to call on every start."""
        async with self._engine.connect() as conn:
            async with conn.begin():
                await self._lock_for_write(conn)
                await conn.run_sync(metadata.create_all, checkfirst=True)

    # --- EventStore ---------------------------------------------------------------------

    async def append(self, events: Sequence[Recorded]) -> list[Recorded]:
        batch = list(events)
        if not batch:
            return []
        rows = [_to_row(ev) for ev in batch]  # encode (and refuse bad input) before locking
        stream_ids = list(dict.fromkeys(ev.stream_id for ev in batch))
        try:
            async with self._engine.connect() as conn:
                async with conn.begin():
                    await self._lock_for_write(conn)
                    _check_versions(batch, await _stream_versions(conn, stream_ids))
                    stmt = insert(events_table).returning(events_table.c.position, sort_by_parameter_order=True)
                    result = await conn.execute(stmt, rows)
                    positions = [row[0] for row in result.all()]
        except IntegrityError as exc:
            if not _is_version_clash(exc):
                raise
            raise await self._conflict_after_clash(batch, stream_ids) from exc
        if len(positions) != len(batch):  # pragma: no cover - a driver returning too few rows
            raise RuntimeError(f"appended {len(batch)} events but got {len(positions)} positions back")
        return [replace(ev, position=pos) for ev, pos in zip(batch, positions, strict=True)]

    async def load(self, stream_id: str) -> list[Recorded]:
        stmt = select(events_table).where(events_table.c.stream_id == stream_id).order_by(events_table.c.version)
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            return [recorded_from_row(row) for row in result.all()]

    async def read_all(self, after: int = 0, limit: int | None = None) -> list[Recorded]:
        stmt = select(events_table).where(events_table.c.position > after).order_by(events_table.c.position)
        if limit is not None:
            stmt = stmt.limit(max(limit, 0))
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            return [recorded_from_row(row) for row in result.all()]

    async def read_user(self, user_id: str, after: int = 0, limit: int | None = None) -> list[Recorded]:
        # Served by the (user_id, position) index: a range scan, already in order.
        stmt = (
            select(events_table)
            .where(events_table.c.user_id == user_id, events_table.c.position > after)
            .order_by(events_table.c.position)
        )
        if limit is not None:
            stmt = stmt.limit(max(limit, 0))
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            return [recorded_from_row(row) for row in result.all()]

    async def last_position(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(func.max(events_table.c.position)))
        return int(value or 0)

    # --- internals ----------------------------------------------------------------------

    async def _lock_for_write(self, conn: AsyncConnection) -> None:
        """Serialise writers: first statement of every writing transaction."""
        if self._dialect == "sqlite":
            # The sqlite3 driver only opens a transaction at the first INSERT, so the version
            # check would run outside it (and a DEFERRED transaction that reads, then writes
            # after another writer committed, fails with "database is locked" at once).
            # IMMEDIATE makes check and insert one transaction holding the write lock, and
            # waits for that lock up to the busy timeout.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_APPEND_LOCK})

    async def _conflict_after_clash(self, batch: list[Recorded], stream_ids: list[str]) -> ConcurrencyConflict:
        """The unique constraint refused the append: say which stream moved on, and to where."""
        async with self._engine.connect() as conn:
            current = await _stream_versions(conn, stream_ids)
        try:
            _check_versions(batch, current)
        except ConcurrencyConflict as conflict:
            return conflict
        first = batch[0]
        return ConcurrencyConflict(first.stream_id, first.version - 1, None)


def _check_versions(batch: list[Recorded], current: dict[str, int]) -> None:
    """Exactly the in-memory store's rule, against the stored versions."""
    versions: dict[str, int] = {}
    for ev in batch:
        now = versions.get(ev.stream_id, current.get(ev.stream_id, 0))
        if ev.version != now + 1:
            raise ConcurrencyConflict(ev.stream_id, ev.version - 1, now)
        versions[ev.stream_id] = ev.version


async def _stream_versions(conn: AsyncConnection, stream_ids: list[str]) -> dict[str, int]:
    stmt = (
        select(events_table.c.stream_id, func.max(events_table.c.version))
        .where(events_table.c.stream_id.in_(stream_ids))
        .group_by(events_table.c.stream_id)
    )
    result = await conn.execute(stmt)
    return {stream_id: int(version) for stream_id, version in result.all()}


def _is_version_clash(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return STREAM_VERSION_CONSTRAINT in message or "events.stream_id, events.version" in message


def _to_row(ev: Recorded) -> dict[str, Any]:
    if ev.occurred_at.tzinfo is None or ev.occurred_at.utcoffset() is None:
        raise ValueError(f"event {ev.stream_id}#{ev.version}: occurred_at must be timezone-aware, got {ev.occurred_at!r}")
    event_type, payload = encode_event(ev.event)
    return {
        "stream_id": ev.stream_id,
        "version": ev.version,
        "event_type": event_type,
        # SQLite keeps the wall-clock fields and drops the offset: store UTC everywhere.
        "occurred_at": ev.occurred_at.astimezone(UTC),
        "user_id": ev.user_id,
        "correlation_id": ev.correlation_id,
        "payload": payload.decode("utf-8"),
    }


def recorded_from_row(row: Any) -> Recorded:
    """An `events` row as the Recorded event it stores."""
    m = row._mapping
    return Recorded(
        stream_id=m["stream_id"],
        version=m["version"],
        occurred_at=_as_utc(m["occurred_at"]),
        user_id=m["user_id"],
        correlation_id=m["correlation_id"],
        event=decode_event(m["event_type"], m["payload"]),
        position=int(m["position"]),
    )


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:  # SQLite: stored as UTC wall-clock time
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- engines ------------------------------------------------------------------------------

def make_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """An AsyncEngine for the event store. On SQLite every connection gets WAL journaling and a
    busy timeout. Creates no file or directory itself (SQLite creates the file on first connect).

    On a database server, every connection taken from the pool is pinged first: after the
    server restarted (or dropped our connections) the pool still holds dead ones, and the next
    append, typically the fill of an order already sent, would fail on one instead of going
    through on a new connection."""
    if make_url(url).get_backend_name() != "sqlite":
        engine_kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **engine_kwargs)
    if engine.dialect.name == "sqlite":
        in_memory = sqlite_path(url) is None

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
                if not in_memory:
                    cursor.execute("PRAGMA journal_mode = WAL")
            finally:
                cursor.close()

    return engine


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; None for an in-memory database or another backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        # sqlite+aiosqlite:///file:path/to.db?mode=ro&uri=true - the options land in the query
        database = database[len("file:"):].partition("?")[0]
        if parsed.query.get("mode") == "memory":
            return None
    if database in ("", ":memory:"):
        return None
    return Path(database)
