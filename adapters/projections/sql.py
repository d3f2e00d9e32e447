"""Checkpointed projections of the trade history in SQL (SQLite or Postgres), and their queries.

`SqlProjector` follows the `events` table by global position. Each batch is ONE transaction:
lock the projection's checkpoint row, read the events after it, fold them into the rows they
touch, write those rows, move the checkpoint. A crash anywhere before the commit leaves rows
and checkpoint as they were, so the rerun applies the same batch exactly once; a second
projector waits on the checkpoint lock (Postgres: SELECT ... FOR UPDATE on its row; SQLite:
BEGIN IMMEDIATE) and then starts after what the first committed. The store hands out positions
in commit order (adapters/eventstore/sqlalchemy_store.py), so a reader past position N never
sees an event at or below N commit later.

The fold is the trade book's own (application/trade_book.py): the rows an event batch touches
are loaded into a TradeBook, the batch is applied to it, and what changed is written back.
So the SQL views equal the in-memory book's by construction of the fold; the tests check the
round trip through the tables (exact decimals, times, order).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
from application.trade_book import TradeBook, halt_reason
from application.views import DailyPnl, PositionView, TargetView, TradeRecord
from domain.events import EmergencyStopActivated, EmergencyStopCleared, ExitFilled, Recorded

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
            return await self._apply_batch(conn)

    async def catch_up(self) -> int:
        """Apply batches until none is left; returns how many events were applied."""
        async with self._engine.connect() as conn:
            return await self._catch_up(conn)

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
            while not stop.is_set():
                if await self._behind(conn):
                    applied += await self._catch_up(conn)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=seconds)
                except TimeoutError:
                    pass
        return applied

    async def _catch_up(self, conn: AsyncConnection) -> int:
        applied = 0
        while True:
            done = await self._apply_batch(conn)
            applied += done
            if done < self._batch:
                return applied

    async def _apply_batch(self, conn: AsyncConnection) -> int:
        async with conn.begin():
            checkpoint = await self._lock_checkpoint(conn)
            result = await conn.execute(
                select(events).where(events.c.position > checkpoint).order_by(events.c.position).limit(self._batch)
            )
            records = [recorded_from_row(row) for row in result.all()]
            if not records:
                return 0
            await _project(conn, records, checkpoint)
            through = records[-1].position or checkpoint
            await self._save_checkpoint(conn, through)
        self.applied_through = through
        if self._on_batch is not None:
            self._on_batch(through)
        return len(records)

    async def checkpoint(self) -> int:
        return await _read_checkpoint(self._engine, self._name)

    async def _behind(self, conn: AsyncConnection) -> bool:
        """A lock-free look: polling an idle history never takes SQLite's write lock from appenders.
        A stale answer only delays the batch to the next poll."""
        async with conn.begin():
            last = await conn.scalar(select(func.max(events.c.position)))
            done = await conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name))
        return int(last or 0) > int(done or 0)

    # --- the checkpoint ------------------------------------------------------------------

    async def _lock_checkpoint(self, conn: AsyncConnection) -> int:
        """First statements of the batch: hold this projection's checkpoint, then read it."""
        row = {"name": self._name, "position": 0}
        if self._engine.dialect.name == "sqlite":
            # The write lock of the whole database, taken before reading anything (see the store).
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await conn.execute(sqlite_insert(proj_checkpoints).values(row).on_conflict_do_nothing())
            stmt = select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name)
        else:
            # A concurrent first insert waits for the other's commit, then does nothing;
            # FOR UPDATE then waits for the holder and reads what it committed.
            await conn.execute(pg_insert(proj_checkpoints).values(row).on_conflict_do_nothing())
            stmt = select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name).with_for_update()
        return int(await conn.scalar(stmt) or 0)

    async def _save_checkpoint(self, conn: AsyncConnection, position: int) -> None:
        await conn.execute(
            update(proj_checkpoints).where(proj_checkpoints.c.name == self._name).values(position=position)
        )


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
            if isinstance(ev, ExitFilled):
                touched.days.add((rec.user_id, rec.occurred_at.date()))
            if isinstance(ev, (EmergencyStopActivated, EmergencyStopCleared)):
                touched.scopes.add(ev.scope)
        return touched


async def _project(conn: AsyncConnection, records: Sequence[Recorded], checkpoint: int) -> None:
    """Fold `records` into the rows they touch and write back what changed."""
    touched = _Touched.by(records)
    book = TradeBook()
    book.position = checkpoint

    stored_targets = {
        row.target_id: _target_view(row)
        for row in await _rows_in(conn, proj_targets, proj_targets.c.target_id, touched.target_ids)
    }
    stored_positions = {
        row.position_id: _position_view(row)
        for row in await _rows_in(conn, proj_positions, proj_positions.c.position_id, touched.position_ids)
    }
    stored_days: dict[tuple[str, date], Decimal] = {}
    days = sorted(touched.days)
    for start in range(0, len(days), _IN_CHUNK):
        key = tuple_(proj_daily_pnl.c.user_id, proj_daily_pnl.c.day)
        result = await conn.execute(select(proj_daily_pnl).where(key.in_(days[start:start + _IN_CHUNK])))
        stored_days.update({(row.user_id, row.day): row.realised_pnl for row in result.all()})
    stored_stops = {
        row.scope: row.reason
        for row in await _rows_in(conn, proj_emergency_stops, proj_emergency_stops.c.scope, touched.scopes)
    }

    book.targets.update(copy.deepcopy(stored_targets))
    book.positions.update(copy.deepcopy(stored_positions))
    book.restore_daily_pnl(DailyPnl(user, day, pnl) for (user, day), pnl in stored_days.items())
    book.stops.update(stored_stops)

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

    await _write_changes(
        conn, proj_targets, "target_id",
        {tid: _target_row(view) for tid, view in book.targets.items() if stored_targets.get(tid) != view},
        set(stored_targets), first_target_event,
    )
    await _write_changes(
        conn, proj_positions, "position_id",
        {pid: _position_row(view) for pid, view in book.positions.items() if stored_positions.get(pid) != view},
        set(stored_positions), first_position_event,
    )

    new_days = [d for d in book.daily_pnl() if (d.user_id, d.day) not in stored_days]
    changed_days = [
        d for d in book.daily_pnl() if (d.user_id, d.day) in stored_days and stored_days[(d.user_id, d.day)] != d.realised_pnl
    ]
    if new_days:
        await conn.execute(
            insert(proj_daily_pnl), [{"user_id": d.user_id, "day": d.day, "realised_pnl": d.realised_pnl} for d in new_days]
        )
    if changed_days:
        stmt = (
            update(proj_daily_pnl)
            .where(proj_daily_pnl.c.user_id == bindparam("k_user_id"), proj_daily_pnl.c.day == bindparam("k_day"))
            .values(realised_pnl=bindparam("v_realised_pnl"))
        )
        await conn.execute(
            stmt, [{"k_user_id": d.user_id, "k_day": d.day, "v_realised_pnl": d.realised_pnl} for d in changed_days]
        )

    for scope in sorted(touched.scopes):
        reason, stored = book.stops.get(scope), stored_stops.get(scope)
        if reason == stored:
            continue
        if stored is not None:
            await conn.execute(delete(proj_emergency_stops).where(proj_emergency_stops.c.scope == scope))
        if reason is not None:
            await conn.execute(insert(proj_emergency_stops).values(scope=scope, reason=reason))

    if book.trades:
        await conn.execute(insert(proj_trades), [_trade_row(t) for t in book.trades])


async def _rows_in(conn: AsyncConnection, table: Table, key: Any, values: Collection[str]) -> list[Any]:
    ordered = sorted(values)
    rows: list[Any] = []
    for start in range(0, len(ordered), _IN_CHUNK):
        result = await conn.execute(select(table).where(key.in_(ordered[start:start + _IN_CHUNK])))
        rows += result.all()
    return rows


async def _write_changes(
    conn: AsyncConnection,
    table: Table,
    key: str,
    changed: dict[str, dict[str, Any]],
    stored: set[str],
    first_event: dict[str, int],
) -> None:
    """Insert the new rows (with their first event), update the changed stored ones."""
    new = [{**row, "first_event": first_event[k]} for k, row in changed.items() if k not in stored]
    if new:
        await conn.execute(insert(table), new)
    updates = [
        {f"v_{col}": value for col, value in row.items() if col != key} | {"k_key": k}
        for k, row in changed.items()
        if k in stored
    ]
    if updates:
        columns = [col for col in next(iter(changed.values())) if col != key]
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("k_key"))
            .values({col: bindparam(f"v_{col}") for col in columns})
        )
        await conn.execute(stmt, updates)


# --- rows and views ------------------------------------------------------------------------

def _target_row(view: TargetView) -> dict[str, Any]:
    return {
        "target_id": view.target_id,
        "user_id": view.user_id,
        "coin_id": view.coin_id,
        "symbol": view.symbol,
        # The book's placeholder for a target seen before its creation has no launch time.
        "launch_at": None if view.launch_at == datetime.min else view.launch_at,
        "quote_amount": view.quote_amount,
        "exit_strategy": view.exit_strategy,
        "status": view.status,
        "confidence": view.confidence,
        "execute_at": view.execute_at,
        "reason": view.reason,
    }


def _target_view(row: Any) -> TargetView:
    return TargetView(
        target_id=row.target_id,
        user_id=row.user_id,
        coin_id=row.coin_id,
        symbol=row.symbol,
        launch_at=datetime.min if row.launch_at is None else row.launch_at,
        quote_amount=row.quote_amount,
        exit_strategy=row.exit_strategy,
        status=row.status,
        confidence=row.confidence,
        execute_at=row.execute_at,
        reason=row.reason,
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


def _position_view(row: Any) -> PositionView:
    return PositionView(
        position_id=row.position_id,
        target_id=row.target_id,
        user_id=row.user_id,
        symbol=row.symbol,
        entry_price=row.entry_price,
        quantity=row.quantity,
        remaining=row.remaining,
        cost=row.cost,
        remaining_cost=row.remaining_cost,
        proceeds=row.proceeds,
        fees=row.fees,
        realised_pnl=row.realised_pnl,
        status=row.status,
        last_exit=row.last_exit,
        opened_at=row.opened_at,
        closed_at=row.closed_at,
        exits=row.exits.split(),
        quote_asset=row.quote_asset,
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
        return [_position_view(row) for row in await self._all(stmt)]

    async def targets(self, user_id: str, statuses: Collection[str] | None = None) -> list[TargetView]:
        t = proj_targets
        stmt = select(t).where(t.c.user_id == user_id).order_by(t.c.first_event, t.c.target_id)
        if statuses is not None:
            stmt = stmt.where(t.c.status.in_(sorted(statuses)))
        return [_target_view(row) for row in await self._all(stmt)]

    async def daily_pnl(self, user_id: str, day_from: date, day_to: date) -> list[DailyPnl]:
        t = proj_daily_pnl
        stmt = select(t).where(t.c.user_id == user_id, t.c.day >= day_from, t.c.day <= day_to).order_by(t.c.day)
        return [DailyPnl(row.user_id, row.day, row.realised_pnl) for row in await self._all(stmt)]

    async def trade_history(self, user_id: str, limit: int = 100, before_position: int | None = None) -> list[TradeRecord]:
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
