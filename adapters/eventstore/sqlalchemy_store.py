"""The event store on SQL: the same code on SQLite (aiosqlite) and Postgres (asyncpg).

Behaves like the in-memory reference store (adapters/eventstore/memory.py):

* `append` is all or nothing. Each stream's first new event must be the stream's current
  version + 1, otherwise ConcurrencyConflict and nothing is written.
* Positions are handed out in commit order, so a reader paging with `read_all(after=...)`
  never skips an event that commits later with a lower position. SQLite: BEGIN IMMEDIATE
  serialises appends. Postgres: appends take a database-wide advisory lock, held by the one
  INSERT statement of the append until its commit.
* The unique (stream_id, version) constraint is the last word: if a writer slips in between
  the version check and the insert, the loser's IntegrityError becomes ConcurrencyConflict.
* Times are stored as UTC and come back as aware UTC datetimes on both backends.

Postgres appends are group-committed. One append per transaction, under the lock, made the
lock's queue the limit: every commit (its WAL flush included) waited for the one before, about
200-350 appends/s on the 2-core test machine, however many workers appended. Now an append is
queued, and a writer task takes everything queued in this process (up to `_GROUP_EVENTS`
events) into one group: the streams' versions are read, each append is checked against them
and against the appends before it in the group (a conflicting one is refused alone), then one
INSERT ... SELECT FROM unnest(...) takes the lock, inserts every accepted event and commits on
its own (autocommit). Two round trips and one WAL flush per group; the lock is held for the
insert and its commit only. The writer keeps its connection while appends are queued, so the
pool's liveness check (three round trips with asyncpg) is paid once per burst, not per group.

Why not transaction ids (positions from pg_current_xact_id(), readers stopping at the
snapshot's xmin): that horizon is cluster-wide. Any writing transaction of any database on
the server holds every reader back, so an append was not visible to `read_all` right after it
returned while other work ran (the contract tests caught it on the shared test server), and a
long transaction elsewhere would stall the projections. Group commit keeps positions in commit
order, read-your-writes and small positions; what it does not scale is appends from many
processes, which still queue on the lock one group each (fine for a handful of workers).

Positions may have gaps on Postgres (a sequence value is not given back when a transaction
rolls back); `last_position` is the highest position stored and paging works across gaps.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from adapters.eventstore.codec import decode_event, encode_event
from adapters.eventstore.database import check_sqlite_location, open_failures, store_address, store_unavailable
from adapters.eventstore.schema import STREAM_VERSION_CONSTRAINT, metadata, snapshots
from adapters.eventstore.schema import events as events_table
from adapters.eventstore.snapshot_codec import encode_state, read_snapshot
from application.errors import ConcurrencyConflict
from domain.events import Recorded

# Any fixed 64-bit number: every appender of the database takes this transaction lock.
_PG_APPEND_LOCK = 0x6D657863_73746F72  # "mexcstor"

_SQLITE_BUSY_TIMEOUT_MS = 10_000
DEFAULT_SNAPSHOT_EVERY = 100


class SqlEventStore:
    """EventStore on an SQLAlchemy AsyncEngine (sqlite+aiosqlite or postgresql+asyncpg)."""

    def __init__(
        self, engine: AsyncEngine, max_writers: int = 1, snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    ) -> None:
        """`max_writers`: on Postgres, how many append transactions of this store may be in
        flight at once (each on its own pooled connection); appends beyond wait and are grouped.
        `snapshot_every`: a stream gets a snapshot each time its version passes a multiple of
        this (0: never); see application/repository.py."""
        if snapshot_every < 0:
            raise ValueError(f"snapshot_every must be 0 (never) or more, got {snapshot_every}")
        self.snapshot_every = snapshot_every
        self._engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"SqlEventStore supports SQLite and Postgres, not {self._dialect}")
        if max_writers < 1:
            raise ValueError(f"max_writers must be at least 1, got {max_writers}")
        self._max_writers = max_writers
        self._queue: deque[_Append] = deque()
        self._writers: set[asyncio.Task[None]] = set()
        self.group_transactions = 0  # Postgres append transactions committed: appends / this = group size

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def create_schema(self) -> None:
        """Create the tables that are missing; safe to call on every start."""
        async with self._engine.connect() as conn, conn.begin():
            await self._lock_for_write(conn)
            await conn.run_sync(metadata.create_all, checkfirst=True)

    # --- EventStore ---------------------------------------------------------------------

    async def append(self, events: Sequence[Recorded]) -> list[Recorded]:
        batch = list(events)
        if not batch:
            return []
        rows = [_to_row(ev) for ev in batch]  # encode (and refuse bad input) before locking
        stream_ids = list(dict.fromkeys(ev.stream_id for ev in batch))
        if self._dialect == "postgresql":
            positions = await self._append_grouped(_Append(batch, rows, stream_ids))
        else:
            positions = await self._append_sqlite(batch, rows, stream_ids)
        if len(positions) != len(batch):  # pragma: no cover - a driver returning too few rows
            raise RuntimeError(f"appended {len(batch)} events but got {len(positions)} positions back")
        return [replace(ev, position=pos) for ev, pos in zip(batch, positions, strict=True)]

    async def _append_sqlite(
        self, batch: list[Recorded], rows: list[dict[str, Any]], stream_ids: list[str],
    ) -> list[int]:
        try:
            async with self._engine.connect() as conn, conn.begin():
                await self._lock_for_write(conn)
                _check_versions(batch, await _stream_versions(conn, stream_ids))
                stmt = insert(events_table).returning(events_table.c.position, sort_by_parameter_order=True)
                result = await conn.execute(stmt, rows)
                return [row[0] for row in result.all()]
        except IntegrityError as exc:
            if not _is_version_clash(exc):
                raise
            raise await self._conflict_after_clash(batch, stream_ids) from exc

    async def append_in(self, conn: AsyncConnection, stream_id: str, build: Callable[[int], Recorded]) -> Recorded:
        """Append one event at the next version of `stream_id` inside the caller's open write
        transaction on this store's database (`build(version)` makes it), so a row the caller
        writes in that transaction and the event recording it commit together or not at all
        (the credential vault). On Postgres this takes the append lock, held to the caller's
        commit, which keeps positions in commit order: commit right after. On SQLite the
        caller's BEGIN IMMEDIATE already serialises every writer."""
        if self._dialect == "postgresql":
            await self._lock_for_write(conn)
        current = (await _stream_versions(conn, [stream_id])).get(stream_id, 0)
        ev = build(current + 1)
        if ev.stream_id != stream_id:
            raise ValueError(f"append_in({stream_id!r}) was given an event of {ev.stream_id!r}")
        stmt = insert(events_table).values(**_to_row(ev)).returning(events_table.c.position)
        position = (await conn.execute(stmt)).scalar_one()
        return replace(ev, position=int(position))

    # --- Postgres: group commit ---------------------------------------------------------

    async def _append_grouped(self, append: _Append) -> list[int]:
        """Queue the append; the next free writer takes it, with whatever else is queued, into one
        transaction. A writer runs as its own task, so a caller cancelled while waiting does not
        break the others' transaction: its append is dropped if still queued, else it goes in."""
        append.outcome = asyncio.get_running_loop().create_future()
        self._queue.append(append)
        self._start_writers()
        try:
            return await asyncio.shield(append.outcome)
        except asyncio.CancelledError:
            if append in self._queue:
                self._queue.remove(append)
            raise

    def _start_writers(self) -> None:
        self._writers = {w for w in self._writers if not w.done()}  # e.g. of an event loop that has ended
        while self._queue and len(self._writers) < self._max_writers:
            writer = asyncio.get_running_loop().create_task(self._write_queued())
            self._writers.add(writer)
            writer.add_done_callback(self._writer_done)

    def _writer_done(self, writer: asyncio.Task[None]) -> None:
        self._writers.discard(writer)
        self._start_writers()

    def _take_group(self) -> list[_Append]:
        taken: list[_Append] = []
        events_taken = 0
        while self._queue and (not taken or events_taken + len(self._queue[0].batch) <= _GROUP_EVENTS):
            taken.append(self._queue.popleft())
            events_taken += len(taken[-1].batch)
        return taken

    async def _write_queued(self) -> None:
        """Write groups while appends are queued, on one connection: the pool's liveness check
        (three round trips with asyncpg) is paid once per burst, not once per group. After a
        failed group the connection goes back (the pool checks it again on the next checkout)."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            while self._queue:
                if not await self._write_group(conn, self._take_group()):
                    return

    async def _write_group(self, conn: AsyncConnection, group: list[_Append]) -> bool:
        """One insert for the group. Each append is checked against the stored versions and
        the appends before it in the group; one that conflicts is refused alone. False when the
        group failed (every append in it fails with the error)."""
        try:
            try:
                written = await self._insert_group(conn, group)
            except IntegrityError as exc:
                if not _is_version_clash(exc):
                    raise
                if len(group) > 1:  # another process won a race: sort out who, one by one
                    for append in group:
                        await self._write_group(conn, [append])
                    return True
                raise await self._conflict_after_clash(group[0].batch, group[0].stream_ids) from exc
        except BaseException as exc:  # nothing of the group was committed
            for append in group:
                if not append.outcome.done():
                    append.outcome.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return isinstance(exc, ConcurrencyConflict)
        for append, outcome in written:
            if not append.outcome.done():
                if isinstance(outcome, ConcurrencyConflict):
                    append.outcome.set_exception(outcome)
                else:
                    append.outcome.set_result(outcome)
        return True

    async def _insert_group(
        self, conn: AsyncConnection, group: list[_Append]
    ) -> list[tuple[_Append, list[int] | ConcurrencyConflict]]:
        """Two round trips for the whole group: read the streams' versions, then insert the
        accepted appends in ONE statement, committed on its own (autocommit). The version read
        need not be in the insert's transaction: versions only grow, so a stale read can only
        let through an event whose version is taken already, and the unique index refuses it."""
        outcomes: list[tuple[_Append, list[int] | ConcurrencyConflict]] = []
        stream_ids = list(dict.fromkeys(sid for append in group for sid in append.stream_ids))
        current = await _stream_versions(conn, stream_ids)
        accepted: list[dict[str, Any]] = []
        for append in group:
            try:
                _check_versions(append.batch, current)
            except ConcurrencyConflict as conflict:
                outcomes.append((append, conflict))
                continue
            for ev in append.batch:
                current[ev.stream_id] = ev.version
            outcomes.append((append, []))
            accepted += append.rows
        if not accepted:
            return outcomes
        params = {column: [row[column] for row in accepted] for column in _PG_GROUP_COLUMNS}
        result = await conn.execute(_PG_GROUP_INSERT, params | {"key": _PG_APPEND_LOCK})
        positions = {(row.stream_id, row.version): int(row.position) for row in result.all()}
        self.group_transactions += 1
        for append, outcome in outcomes:
            if isinstance(outcome, list):
                outcome += [positions[(ev.stream_id, ev.version)] for ev in append.batch]
        return outcomes

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

    # --- SnapshotStore ------------------------------------------------------------------

    async def load_snapshot(self, stream_id: str, shape: str) -> tuple[int, dict[str, object]] | None:
        columns = (snapshots.c.version, snapshots.c.shape, snapshots.c.state)
        stmt = select(*columns).where(snapshots.c.stream_id == stream_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else read_snapshot(int(row.version), row.shape, row.state, shape)

    async def save_snapshot(self, stream_id: str, version: int, shape: str, state: dict[str, object]) -> None:
        row = {"stream_id": stream_id, "version": version, "shape": shape, "state": encode_state(shape, state)}
        upsert = (pg_insert if self._dialect == "postgresql" else sqlite_insert)(snapshots).values(
            {**row, "taken_at": func.now()}
        )
        newer = upsert.excluded
        stmt = upsert.on_conflict_do_update(
            index_elements=[snapshots.c.stream_id],
            set_={"version": newer.version, "shape": newer.shape, "state": newer.state, "taken_at": newer.taken_at},
            # Never back to an older version; a snapshot of another shape (an older program's) is replaced.
            where=(snapshots.c.version < newer.version) | (snapshots.c.shape != newer.shape),
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def load_from(self, stream_id: str, version: int) -> list[Recorded]:
        stmt = (
            select(events_table)
            .where(events_table.c.stream_id == stream_id, events_table.c.version >= version)
            .order_by(events_table.c.version)
        )
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            return [recorded_from_row(row) for row in result.all()]

    # --- internals ----------------------------------------------------------------------

    async def _lock_for_write(self, conn: AsyncConnection) -> None:
        """Serialise writers: first statement of a writing transaction."""
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


@dataclass(eq=False)
class _Append:
    """One caller's append, waiting for a group transaction on Postgres."""

    batch: list[Recorded]
    rows: list[dict[str, Any]]
    stream_ids: list[str]
    outcome: asyncio.Future[list[int]] = field(init=False)


# Events per group transaction at most (an append larger than this goes alone).
_GROUP_EVENTS = 2_000

_PG_GROUP_COLUMNS = ("stream_id", "version", "event_type", "occurred_at", "user_id", "correlation_id", "payload")
# One statement, its own transaction. The sort consumes every row, and so the lock, before the
# first insert; the positions (the column's sequence) are then drawn in append order, while no
# other appender can draw any, and the lock is released with the commit.
_PG_GROUP_INSERT = text(
    """
    WITH locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(:key) AS held)
    INSERT INTO events (stream_id, version, event_type, occurred_at, user_id, correlation_id, payload)
    SELECT new.stream_id, new.version, new.event_type, new.occurred_at, new.user_id, new.correlation_id, new.payload
    FROM locked, unnest(
        CAST(:stream_id AS text[]), CAST(:version AS integer[]), CAST(:event_type AS text[]),
        CAST(:occurred_at AS timestamptz[]), CAST(:user_id AS text[]), CAST(:correlation_id AS text[]),
        CAST(:payload AS text[])
    ) WITH ORDINALITY AS new(stream_id, version, event_type, occurred_at, user_id, correlation_id, payload, ord)
    ORDER BY new.ord
    RETURNING position, stream_id, version
    """
)


def _check_versions(batch: list[Recorded], current: dict[str, int]) -> None:
    """Exactly the in-memory store's rule, against the stored versions."""
    versions: dict[str, int] = {}
    for ev in batch:
        now = versions.get(ev.stream_id, current.get(ev.stream_id, 0))
        if ev.version != now + 1:
            raise ConcurrencyConflict(ev.stream_id, ev.version - 1, now)
        versions[ev.stream_id] = ev.version


# = ANY(array): one statement for any number of streams, prepared once per connection (an IN
# list is a new statement for every length), and as text: the hot path of every append, where
# building and compiling a Core select cost twice the round trip.
# One index probe per stream (the newest version of each), whatever plan Postgres picks.
_PG_STREAM_VERSIONS = text(
    "SELECT s.id, (SELECT e.version FROM events e WHERE e.stream_id = s.id ORDER BY e.version DESC LIMIT 1) "
    "FROM unnest(CAST(:stream_ids AS text[])) AS s(id)"
)


async def _stream_versions(conn: AsyncConnection, stream_ids: list[str]) -> dict[str, int]:
    if conn.dialect.name == "postgresql":
        result = await conn.execute(_PG_STREAM_VERSIONS, {"stream_ids": stream_ids})
    else:
        stmt = (
            select(events_table.c.stream_id, func.max(events_table.c.version))
            .where(events_table.c.stream_id.in_(stream_ids))
            .group_by(events_table.c.stream_id)
        )
        result = await conn.execute(stmt)
    return {stream_id: int(version) for stream_id, version in result.all() if version is not None}


def _is_version_clash(exc: IntegrityError) -> bool:
    message = str(exc.orig)
    return STREAM_VERSION_CONSTRAINT in message or "events.stream_id, events.version" in message


def _to_row(ev: Recorded) -> dict[str, Any]:
    if ev.occurred_at.tzinfo is None or ev.occurred_at.utcoffset() is None:
        raise ValueError(
            f"event {ev.stream_id}#{ev.version}: occurred_at must be timezone-aware, got {ev.occurred_at!r}"
        )
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
    """An `events` row (SQLAlchemy's, or any mapping of its columns) as the Recorded event it stores."""
    m = getattr(row, "_mapping", row)
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

    `url` is read by `store_address` (adapters/eventstore/database.py): postgres:// and
    postgresql:// mean asyncpg, and libpq's sslmode= and friends become asyncpg's connect arguments.

    On Postgres, statements are planned with their parameters every time (see below). On a
    database server, every connection taken from the pool is pinged first: after the
    server restarted (or dropped our connections) the pool still holds dead ones, and the next
    append, typically the fill of an order already sent, would fail on one instead of going
    through on a new connection."""
    address = store_address(url)
    if address.url.get_backend_name() != "sqlite":
        engine_kwargs.setdefault("pool_pre_ping", True)
    if address.url.get_backend_name() == "postgresql":
        # Plan every statement with its parameters. asyncpg prepares each statement once per
        # connection, and Postgres may then keep a generic plan made while a table was small (a
        # fresh database): the append's version read kept scanning the whole events table as it
        # grew, 0.1 ms at first and 6 ms at 30,000 events. Planning these statements costs less.
        given = dict(engine_kwargs.get("connect_args") or {})
        connect_args = address.connect_args | given
        connect_args["server_settings"] = (
            {"plan_cache_mode": "force_custom_plan"}
            | dict(address.connect_args.get("server_settings") or {})
            | dict(given.get("server_settings") or {})
        )
        engine_kwargs["connect_args"] = connect_args
    engine = create_async_engine(address.url, **engine_kwargs)
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


async def open_engine(url: str, **engine_kwargs: Any) -> AsyncEngine:
    """`make_engine`, then one connection: a store that cannot be opened (no server, a missing
    database or role, a refused password or TLS, a missing or unwritable SQLite directory) fails
    here as one StoreUnavailable, before anything is written. Errors after this are not
    translated: they are not about reaching the database."""
    address = store_address(url)
    check_sqlite_location(address, sqlite_path(url))
    engine = make_engine(url, **engine_kwargs)
    try:
        async with engine.connect():
            pass
    except open_failures() as exc:
        await engine.dispose()
        raise store_unavailable(address, exc) from None
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
