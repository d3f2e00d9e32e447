"""Checkpointed projections of the trade history in SQL (SQLite or Postgres), and their queries.

`SqlProjector` follows the `events` table by global position. Each batch is ONE transaction:
lock the projection's checkpoint row, read the events after it, fold them into the rows they
touch, write those rows, move the checkpoint. A crash anywhere before the commit leaves rows
and checkpoint as they were, so the rerun applies the same batch exactly once; a second
projector waits on the checkpoint lock (Postgres: the upsert of its row; SQLite: BEGIN
IMMEDIATE) and then starts after what the first committed. The store hands out positions
in commit order (adapters/eventstore/sqlalchemy_store.py), so a reader past position N never
sees an event at or below N commit later.

The fold is the trade book's own (application/trade_book.py): the rows an event batch touches
are loaded into a TradeBook, the batch is applied to it, and what changed is written back.
So the SQL views equal the in-memory book's by construction of the fold; the tests check the
round trip through the tables (exact decimals, times, order). The fold is pure (`_fold`); the
reads and writes around it are SQLAlchemy Core on SQLite and asyncpg's own connection on
Postgres (`_AsyncpgIO`, for speed: see bench/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator

from adapters.eventstore.schema import (
    events,
    proj_checkpoints,
    proj_daily_pnl,
    proj_emergency_stops,
    proj_positions,
    proj_targets,
    proj_trades,
)
from adapters.eventstore.sqlalchemy_store import recorded_from_row
from application.trade_book import UNKNOWN_LAUNCH_AT, TradeBook, halt_reason
from application.views import DailyPnl, PositionView, TargetView, TradeRecord
from domain.events import EmergencyStopActivated, EmergencyStopCleared, EntryFeeLearnt, ExitFilled, Recorded

# The one projection so far: the trade book's views (targets, positions, trades, P&L, stops).
PROJECTION = "trade_book"

DEFAULT_BATCH = 500
_IN_CHUNK = 500  # ids per IN (...) list: well under every driver's parameter limit


class SqlProjector:
    """Keeps the proj_* tables of projection `name` up to date with the events table."""

    def __init__(
        self,
        engine: AsyncEngine,
        name: str = PROJECTION,
        batch: int = DEFAULT_BATCH,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        """`on_batch`, if given, is called after each committed batch with the position it reached."""
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"SqlProjector supports SQLite and Postgres, not {engine.dialect.name}")
        if engine.dialect.name == "postgresql" and engine.dialect.driver != "asyncpg":
            raise ValueError(f"SqlProjector runs on Postgres through asyncpg, not {engine.dialect.driver}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self._engine = engine
        self._name = name
        self._batch = batch
        self._on_batch = on_batch
        # The position of the last event this projector committed into its views (0: none yet).
        self.applied_through = 0

    @property
    def name(self) -> str:
        return self._name

    async def apply_batch(self) -> int:
        """Apply at most one batch of the events after the checkpoint, in one transaction.
        Returns how many events it applied (0: caught up)."""
        async with self._engine.connect() as conn:
            return await self._apply_batch(await _batch_io(conn))

    async def catch_up(self) -> int:
        """Apply batches until none is left; returns how many events were applied."""
        async with self._engine.connect() as conn:
            return await self._catch_up(await _batch_io(conn))

    async def follow(self, poll_interval: float | timedelta = 1.0, stop: asyncio.Event | None = None) -> int:
        """Catch up, then poll every `poll_interval` until `stop` is set; returns how many events
        were applied. A database error ends the loop (raised): the worker's supervisor restarts it,
        and the checkpoint makes the restart resume exactly where the last commit left off.

        Follows on one connection: a checkout per poll costs the pool's liveness check (three
        round trips with asyncpg), more than the poll itself."""
        seconds = poll_interval.total_seconds() if isinstance(poll_interval, timedelta) else poll_interval
        stop = stop if stop is not None else asyncio.Event()
        applied = 0
        async with self._engine.connect() as conn:
            io = await _batch_io(conn)
            while not stop.is_set():
                if await io.behind(self._name):
                    applied += await self._catch_up(io)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=seconds)
        return applied

    async def _catch_up(self, io: _BatchIO) -> int:
        applied = 0
        while True:
            done = await self._apply_batch(io)
            applied += done
            if done < self._batch:
                return applied

    async def _apply_batch(self, io: _BatchIO) -> int:
        async with io.transaction():
            checkpoint = await io.lock_checkpoint(self._name)
            records = await io.read_events(checkpoint, self._batch)
            if not records:
                return 0
            await _project(io, records, checkpoint)
            through = records[-1].position or checkpoint
            await io.save_checkpoint(self._name, through)
        self.applied_through = through
        if self._on_batch is not None:
            self._on_batch(through)
        return len(records)

    async def checkpoint(self) -> int:
        return await _read_checkpoint(self._engine, self._name)


async def run_projector(
    engine: AsyncEngine, *, name: str = PROJECTION, batch: int = DEFAULT_BATCH, until_caught_up: bool = True
) -> int:
    """Project what was recorded since the checkpoint: everything, or one batch. Returns how many events."""
    projector = SqlProjector(engine, name, batch)
    return await (projector.catch_up() if until_caught_up else projector.apply_batch())


async def _read_checkpoint(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        value = await conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == name))
    return int(value or 0)


# --- one batch -------------------------------------------------------------------------------

@dataclass
class _Touched:
    """The keys of the rows a batch can change."""

    target_ids: set[str] = field(default_factory=set)
    position_ids: set[str] = field(default_factory=set)
    days: set[tuple[str, date]] = field(default_factory=set)
    scopes: set[str] = field(default_factory=set)

    @classmethod
    def by(cls, records: Iterable[Recorded]) -> _Touched:
        touched = cls()
        for rec in records:
            ev = rec.event
            # Any event naming a target or a position may touch its row: loading a few rows
            # that stay unchanged costs less than a list to keep in step with the fold.
            if isinstance(target_id := getattr(ev, "target_id", None), str):
                touched.target_ids.add(target_id)
            if isinstance(position_id := getattr(ev, "position_id", None), str):
                touched.position_ids.add(position_id)
            if isinstance(ev, (ExitFilled, EntryFeeLearnt)):  # the events that realise P&L
                touched.days.add((rec.user_id, rec.occurred_at.date()))
            if isinstance(ev, (EmergencyStopActivated, EmergencyStopCleared)):
                touched.scopes.add(ev.scope)
        return touched


@dataclass
class _Stored:
    """The rows a batch touches, as they are before it."""

    targets: dict[str, TargetView]
    positions: dict[str, PositionView]
    days: dict[tuple[str, date], Decimal]
    stops: dict[str, str]


@dataclass
class _Writes:
    """What a batch changes: rows to insert (with their first event) and stored rows to update."""

    new: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    changed: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    stops: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)  # scope -> (stored, now)
    trades: list[dict[str, Any]] = field(default_factory=list)

    def rows(self, table: Table, now: Mapping[Any, Any], stored: Mapping[Any, Any],
             row: Callable[[Any, Any], dict[str, Any]], first_event: Mapping[Any, int] | None = None) -> None:
        """The rows of `table` the batch inserts (keys not stored; with their first event where the
        table keeps it) and updates (stored values that changed), in the order of `now`."""
        for key, value in now.items():
            if key not in stored:
                first = {} if first_event is None else {"first_event": first_event[key]}
                self.new.setdefault(table, []).append(row(key, value) | first)
            elif stored[key] != value:
                self.changed.setdefault(table, []).append(row(key, value))


class _BatchIO(Protocol):
    """One batch's reads and writes, on one connection, in the transaction it opens."""

    def transaction(self) -> AbstractAsyncContextManager[Any]: ...
    async def behind(self, name: str) -> bool: ...
    async def lock_checkpoint(self, name: str) -> int: ...
    async def read_events(self, after: int, limit: int) -> list[Recorded]: ...
    async def load(self, touched: _Touched) -> _Stored: ...
    async def write_rows(self, table: Table, key: Sequence[str], new: list[dict[str, Any]],
                         changed: list[dict[str, Any]]) -> None: ...
    async def write_stops(self, stops: dict[str, tuple[str | None, str | None]]) -> None: ...
    async def insert_trades(self, rows: list[dict[str, Any]]) -> None: ...
    async def save_checkpoint(self, name: str, position: int) -> None: ...


async def _batch_io(conn: AsyncConnection) -> _BatchIO:
    """Postgres: the driver's own connection (prepared statements, one statement per table);
    SQLite: SQLAlchemy Core."""
    if conn.dialect.name == "postgresql":
        raw = await conn.get_raw_connection()
        return _AsyncpgIO(raw.driver_connection)
    return _AlchemyIO(conn)


async def _project(io: _BatchIO, records: Sequence[Recorded], checkpoint: int) -> None:
    """Fold `records` into the rows they touch and write back what changed."""
    writes = _fold(records, checkpoint, await io.load(_Touched.by(records)))
    for table, key in _KEYS.items():
        new, changed = writes.new.get(table, []), writes.changed.get(table, [])
        if new or changed:
            await io.write_rows(table, key, new, changed)
    if writes.stops:
        await io.write_stops(writes.stops)
    if writes.trades:
        await io.insert_trades(writes.trades)


_KEYS: dict[Table, tuple[str, ...]] = {
    proj_targets: ("target_id",),
    proj_positions: ("position_id",),
    proj_daily_pnl: ("user_id", "day"),
}


def _fold(records: Sequence[Recorded], checkpoint: int, stored: _Stored) -> _Writes:
    """The trade book's fold of `records` over the stored rows, as rows to write. No I/O."""
    book = TradeBook()
    book.position = checkpoint
    # The book folds into copies: `stored` must stay as loaded, since what differs from it is what
    # gets written (`_Writes.rows`). A view's fields are immutable values but for a position's
    # `exits` (a list the fold appends to), so that list is the one thing copied below the view.
    book.targets.update({key: replace(view) for key, view in stored.targets.items()})
    book.positions.update({key: replace(view, exits=list(view.exits)) for key, view in stored.positions.items()})
    book.restore_daily_pnl(DailyPnl(user, day, pnl) for (user, day), pnl in stored.days.items())
    book.stops.update(stored.stops)

    # A row's first event orders the lists as the book's dicts are ordered: new keys go last.
    first_target_event: dict[str, int] = {}
    first_position_event: dict[str, int] = {}
    for rec in records:
        targets_before, positions_before = len(book.targets), len(book.positions)
        book.apply(rec)
        if len(book.targets) > targets_before:
            first_target_event[next(reversed(book.targets))] = rec.position or 0
        if len(book.positions) > positions_before:
            first_position_event[next(reversed(book.positions))] = rec.position or 0

    writes = _Writes()
    writes.rows(proj_targets, book.targets, stored.targets, lambda _, target: _target_row(target), first_target_event)
    writes.rows(proj_positions, book.positions, stored.positions, lambda _, position: _position_row(position),
                first_position_event)
    days = {(day.user_id, day.day): day.realised_pnl for day in book.daily_pnl()}
    writes.rows(proj_daily_pnl, days, stored.days,
                lambda key, pnl: {"user_id": key[0], "day": key[1], "realised_pnl": pnl})
    for scope in sorted(set(stored.stops) | set(book.stops)):
        if stored.stops.get(scope) != book.stops.get(scope):
            writes.stops[scope] = (stored.stops.get(scope), book.stops.get(scope))
    writes.trades = [_trade_row(t) for t in book.trades]
    return writes


class _AlchemyIO:
    """A batch through SQLAlchemy Core: SQLite."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self._conn.begin()

    async def behind(self, name: str) -> bool:
        """A lock-free look: polling an idle history never takes SQLite's write lock from appenders.
        A stale answer only delays the batch to the next poll."""
        async with self._conn.begin():
            last = await self._conn.scalar(select(func.max(events.c.position)))
            done = await self._conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == name))
        return int(last or 0) > int(done or 0)

    async def lock_checkpoint(self, name: str) -> int:
        """First statements of the batch: the write lock of the whole database, taken before
        reading anything (see the store), then the checkpoint, created on first use."""
        await self._conn.exec_driver_sql("BEGIN IMMEDIATE")
        await self._conn.execute(sqlite_insert(proj_checkpoints).values(name=name, position=0).on_conflict_do_nothing())
        position = await self._conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == name))
        return int(position or 0)

    async def read_events(self, after: int, limit: int) -> list[Recorded]:
        result = await self._conn.execute(
            select(events).where(events.c.position > after).order_by(events.c.position).limit(limit)
        )
        return [recorded_from_row(row) for row in result.all()]

    async def load(self, touched: _Touched) -> _Stored:
        days: dict[tuple[str, date], Decimal] = {}
        wanted = sorted(touched.days)
        for start in range(0, len(wanted), _IN_CHUNK):
            key = tuple_(proj_daily_pnl.c.user_id, proj_daily_pnl.c.day)
            result = await self._conn.execute(select(proj_daily_pnl).where(key.in_(wanted[start:start + _IN_CHUNK])))
            days.update({(row.user_id, row.day): row.realised_pnl for row in result.all()})
        return _Stored(
            targets={row.target_id: _target_view(row._mapping)
                     for row in await self._rows_in(proj_targets, "target_id", touched.target_ids)},
            positions={row.position_id: _position_view(row._mapping)
                       for row in await self._rows_in(proj_positions, "position_id", touched.position_ids)},
            days=days,
            stops={row.scope: row.reason for row in await self._rows_in(proj_emergency_stops, "scope", touched.scopes)},
        )

    async def _rows_in(self, table: Table, key: str, values: Collection[str]) -> list[Any]:
        ordered = sorted(values)
        rows: list[Any] = []
        for start in range(0, len(ordered), _IN_CHUNK):
            result = await self._conn.execute(select(table).where(table.c[key].in_(ordered[start:start + _IN_CHUNK])))
            rows += result.all()
        return rows

    async def write_rows(
        self, table: Table, key: Sequence[str], new: list[dict[str, Any]], changed: list[dict[str, Any]]
    ) -> None:
        """Insert the new rows, update the changed stored ones (first_event stays)."""
        if new:
            await self._conn.execute(insert(table), new)
        if changed:
            columns = tuple(col for col in changed[0] if col not in key)
            stmt = _update_by_key(table, tuple(key), columns)
            await self._conn.execute(
                stmt, [{f"k_{k}": row[k] for k in key} | {f"v_{col}": row[col] for col in columns} for row in changed]
            )

    async def write_stops(self, stops: dict[str, tuple[str | None, str | None]]) -> None:
        for scope, (stored, reason) in stops.items():
            if stored is not None:
                await self._conn.execute(delete(proj_emergency_stops).where(proj_emergency_stops.c.scope == scope))
            if reason is not None:
                await self._conn.execute(insert(proj_emergency_stops).values(scope=scope, reason=reason))

    async def insert_trades(self, rows: list[dict[str, Any]]) -> None:
        await self._conn.execute(insert(proj_trades), rows)

    async def save_checkpoint(self, name: str, position: int) -> None:
        stmt = update(proj_checkpoints).where(proj_checkpoints.c.name == name).values(position=position)
        await self._conn.execute(stmt)


@functools.cache
def _update_by_key(table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """UPDATE of `columns` of the row with `key` (bound as k_<key>, v_<column>), built once per shape."""
    return (
        update(table)
        .where(*(table.c[k] == bindparam(f"k_{k}") for k in key))
        .values({col: bindparam(f"v_{col}") for col in columns})
    )


class _AsyncpgIO:
    """A batch on asyncpg's own connection (Postgres): prepared statements, and one statement per
    table whatever the batch's size (arrays through unnest). Through SQLAlchemy, parameter
    building and row processing cost more CPU than the fold itself, and at several thousand
    events a second the projector fell behind on them.

    The column types still do the converting: each TypeDecorator's bind and result processing
    (exact decimals as text, times in UTC) runs here as it does through SQLAlchemy."""

    def __init__(self, driver: Any) -> None:
        self._db = driver

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return cast(AbstractAsyncContextManager[Any], self._db.transaction())

    async def behind(self, name: str) -> bool:
        return bool(await self._db.fetchval(_PG_BEHIND, name))

    async def lock_checkpoint(self, name: str) -> int:
        # Creates the row on first use, else locks it (a second projector waits here for the
        # first's commit) and returns the committed position.
        return int(await self._db.fetchval(_PG_LOCK_CHECKPOINT, name))

    async def read_events(self, after: int, limit: int) -> list[Recorded]:
        return [recorded_from_row(row) for row in await self._db.fetch(_PG_READ_EVENTS, after, limit)]

    async def load(self, touched: _Touched) -> _Stored:
        stored = _Stored({}, {}, {}, {})
        if touched.target_ids:
            for row in await self._db.fetch(_pg_select_in(proj_targets), sorted(touched.target_ids)):
                view = _target_view(_from_pg(proj_targets, row))
                stored.targets[view.target_id] = view
        if touched.position_ids:
            for row in await self._db.fetch(_pg_select_in(proj_positions), sorted(touched.position_ids)):
                pview = _position_view(_from_pg(proj_positions, row))
                stored.positions[pview.position_id] = pview
        if touched.days:
            users, days = zip(*sorted(touched.days), strict=True)
            for row in await self._db.fetch(_PG_SELECT_DAYS, list(users), list(days)):
                found = _from_pg(proj_daily_pnl, row)
                stored.days[(found["user_id"], found["day"])] = found["realised_pnl"]
        if touched.scopes:
            for row in await self._db.fetch(_pg_select_in(proj_emergency_stops), sorted(touched.scopes)):
                stored.stops[row["scope"]] = row["reason"]
        return stored

    async def write_rows(
        self, table: Table, key: Sequence[str], new: list[dict[str, Any]], changed: list[dict[str, Any]]
    ) -> None:
        """One upsert: new rows are inserted with their first event, stored rows keep theirs."""
        if "first_event" in table.c:  # a placeholder: the upsert leaves a stored row's first event
            changed = [row | {"first_event": 0} for row in changed]
        rows = new + changed
        await self._db.execute(_pg_upsert(table, tuple(key)), *_pg_columns(table, rows))

    async def write_stops(self, stops: dict[str, tuple[str | None, str | None]]) -> None:
        await self._db.execute("DELETE FROM proj_emergency_stops WHERE scope = ANY($1::text[])", sorted(stops))
        active = [{"scope": scope, "reason": reason}
                  for scope, (_, reason) in sorted(stops.items()) if reason is not None]
        if active:
            await self._db.execute(_pg_insert(proj_emergency_stops), *_pg_columns(proj_emergency_stops, active))

    async def insert_trades(self, rows: list[dict[str, Any]]) -> None:
        await self._db.execute(_pg_insert(proj_trades), *_pg_columns(proj_trades, rows))

    async def save_checkpoint(self, name: str, position: int) -> None:
        await self._db.execute("UPDATE proj_checkpoints SET position = $2 WHERE name = $1", name, position)


_PG = postgresql.dialect()
_PG_BEHIND = (
    "SELECT coalesce((SELECT max(position) FROM events), 0)"
    " > coalesce((SELECT position FROM proj_checkpoints WHERE name = $1), 0)"
)
_PG_LOCK_CHECKPOINT = (
    "INSERT INTO proj_checkpoints (name, position) VALUES ($1, 0)"
    " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position"
)
_PG_READ_EVENTS = (
    f"SELECT {', '.join(c.name for c in events.columns)} FROM events"
    " WHERE position > $1 ORDER BY position LIMIT $2"
)
_PG_SELECT_DAYS = (
    "SELECT d.* FROM proj_daily_pnl d JOIN unnest($1::text[], $2::date[]) AS k(user_id, day)"
    " ON d.user_id = k.user_id AND d.day = k.day"
)


# The statements and each table's column types are built once per table (functools.cache: tables
# are module-level constants), not on every batch.
@functools.cache
def _pg_select_in(table: Table) -> str:
    [key] = table.primary_key.columns
    return f"SELECT * FROM {table.name} WHERE {key.name} = ANY($1::{key.type.compile(dialect=_PG)}[])"


@functools.cache
def _pg_insert(table: Table) -> str:
    """INSERT of every column, each given as one array (rows side by side)."""
    names = ", ".join(c.name for c in table.columns)
    arrays = ", ".join(f"${i}::{_pg_type(c)}[]" for i, c in enumerate(table.columns, start=1))
    return f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"


@functools.cache
def _pg_upsert(table: Table, key: tuple[str, ...]) -> str:
    kept = set(key) | {"first_event"}
    updates = ", ".join(f"{c.name} = EXCLUDED.{c.name}" for c in table.columns if c.name not in kept)
    return f"{_pg_insert(table)} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


def _pg_type(column: Any) -> str:
    impl = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    return str(impl.compile(dialect=_PG))


@functools.cache
def _pg_types(table: Table) -> tuple[tuple[str, TypeDecorator[Any] | None], ...]:
    """Each column of `table` in order: its name, and its TypeDecorator if it has one."""
    return tuple((c.name, c.type if isinstance(c.type, TypeDecorator) else None) for c in table.columns)


def _pg_columns(table: Table, rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The rows as one list per column, through each column type's bind processing."""
    columns = []
    for name, decorator in _pg_types(table):
        values = [row[name] for row in rows]
        if decorator is not None:
            values = [decorator.process_bind_param(v, _PG) for v in values]
        columns.append(values)
    return columns


def _from_pg(table: Table, row: Any) -> dict[str, Any]:
    """An asyncpg row as SQLAlchemy would give it: through each column type's result processing."""
    found = dict(row)
    for name, decorator in _pg_types(table):
        if decorator is not None:
            found[name] = decorator.process_result_value(found[name], _PG)
    return found


# --- rows and views ------------------------------------------------------------------------

def _target_row(view: TargetView) -> dict[str, Any]:
    return {
        "target_id": view.target_id,
        "user_id": view.user_id,
        "coin_id": view.coin_id,
        "symbol": view.symbol,
        # The book's placeholder for a target seen before its creation has no launch time.
        "launch_at": None if view.launch_at == UNKNOWN_LAUNCH_AT else view.launch_at,
        "quote_amount": view.quote_amount,
        "exit_strategy": view.exit_strategy,
        "status": view.status,
        "confidence": view.confidence,
        "execute_at": view.execute_at,
        "reason": view.reason,
        "live": view.live,
        "max_entry_price": view.max_entry_price,
    }


def _target_view(row: Mapping[str, Any]) -> TargetView:
    return TargetView(
        target_id=row["target_id"],
        user_id=row["user_id"],
        coin_id=row["coin_id"],
        symbol=row["symbol"],
        launch_at=UNKNOWN_LAUNCH_AT if row["launch_at"] is None else row["launch_at"],
        quote_amount=row["quote_amount"],
        exit_strategy=row["exit_strategy"],
        status=row["status"],
        confidence=row["confidence"],
        execute_at=row["execute_at"],
        reason=row["reason"],
        live=bool(row["live"]),
        max_entry_price=row["max_entry_price"],
    )


def _position_row(view: PositionView) -> dict[str, Any]:
    if any(not name or " " in name for name in view.exits):
        raise ValueError(f"exit names must be single words: {view.exits!r}")
    return {
        "position_id": view.position_id,
        "target_id": view.target_id,
        "user_id": view.user_id,
        "symbol": view.symbol,
        "quote_asset": view.quote_asset,
        "entry_price": view.entry_price,
        "quantity": view.quantity,
        "remaining": view.remaining,
        "cost": view.cost,
        "remaining_cost": view.remaining_cost,
        "proceeds": view.proceeds,
        "fees": view.fees,
        "realised_pnl": view.realised_pnl,
        "status": view.status,
        "last_exit": view.last_exit,
        "opened_at": view.opened_at,
        "closed_at": view.closed_at,
        "exits": " ".join(view.exits),
    }


def _position_view(row: Mapping[str, Any]) -> PositionView:
    return PositionView(
        position_id=row["position_id"],
        target_id=row["target_id"],
        user_id=row["user_id"],
        symbol=row["symbol"],
        entry_price=row["entry_price"],
        quantity=row["quantity"],
        remaining=row["remaining"],
        cost=row["cost"],
        remaining_cost=row["remaining_cost"],
        proceeds=row["proceeds"],
        fees=row["fees"],
        realised_pnl=row["realised_pnl"],
        status=row["status"],
        last_exit=row["last_exit"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        exits=row["exits"].split(),
        quote_asset=row["quote_asset"],
    )


def _trade_row(trade: TradeRecord) -> dict[str, Any]:
    return {
        "event_position": trade.position,
        "user_id": trade.user_id,
        "occurred_at": trade.occurred_at,
        "position_id": trade.position_id,
        "target_id": trade.target_id,
        "symbol": trade.symbol,
        "side": trade.side,
        "event_type": trade.event_type,
        "price": trade.price,
        "quantity": trade.quantity,
        "quote_amount": trade.quote_amount,
        "fee": trade.fee,
        "fee_asset": trade.fee_asset,
        "realised_pnl": trade.realised_pnl,
        "client_order_id": trade.client_order_id,
    }


def _trade_view(row: Any) -> TradeRecord:
    return TradeRecord(
        position=int(row.event_position),
        occurred_at=row.occurred_at,
        user_id=row.user_id,
        position_id=row.position_id,
        target_id=row.target_id,
        symbol=row.symbol,
        side=row.side,
        event_type=row.event_type,
        price=row.price,
        quantity=row.quantity,
        quote_amount=row.quote_amount,
        fee=row.fee,
        fee_asset=row.fee_asset,
        realised_pnl=row.realised_pnl,
        client_order_id=row.client_order_id,
    )


# --- queries ---------------------------------------------------------------------------------

class SqlReadModels:
    """ReadModels from the proj_* tables that SqlProjector keeps (as of its checkpoint)."""

    def __init__(self, engine: AsyncEngine, name: str = PROJECTION) -> None:
        self._engine = engine
        self._name = name

    async def _all(self, stmt: Any) -> list[Any]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(stmt)).all())

    async def positions(self, user_id: str, open_only: bool = False) -> list[PositionView]:
        t = proj_positions
        stmt = select(t).where(t.c.user_id == user_id).order_by(t.c.first_event, t.c.position_id)
        if open_only:
            stmt = stmt.where(t.c.status != "closed")
        return [_position_view(row._mapping) for row in await self._all(stmt)]

    async def targets(self, user_id: str, statuses: Collection[str] | None = None) -> list[TargetView]:
        t = proj_targets
        stmt = select(t).where(t.c.user_id == user_id).order_by(t.c.first_event, t.c.target_id)
        if statuses is not None:
            stmt = stmt.where(t.c.status.in_(sorted(statuses)))
        return [_target_view(row._mapping) for row in await self._all(stmt)]

    async def daily_pnl(self, user_id: str, day_from: date, day_to: date) -> list[DailyPnl]:
        t = proj_daily_pnl
        stmt = select(t).where(t.c.user_id == user_id, t.c.day >= day_from, t.c.day <= day_to).order_by(t.c.day)
        return [DailyPnl(row.user_id, row.day, row.realised_pnl) for row in await self._all(stmt)]

    async def trade_history(
        self, user_id: str, limit: int = 100, before_position: int | None = None,
    ) -> list[TradeRecord]:
        t = proj_trades
        stmt = select(t).where(t.c.user_id == user_id).order_by(t.c.event_position.desc()).limit(max(limit, 0))
        if before_position is not None:
            stmt = stmt.where(t.c.event_position < before_position)
        return [_trade_view(row) for row in await self._all(stmt)]

    async def halted(self, user_id: str) -> str | None:
        t = proj_emergency_stops
        rows = await self._all(select(t).where(t.c.scope.in_(["global", user_id])))
        return halt_reason({row.scope: row.reason for row in rows}, user_id)

    async def checkpoint(self) -> int:
        return await _read_checkpoint(self._engine, self._name)
