"""SqlNotificationOutbox: the notifier's checkpoint, outbox and lease on the event store's
database (SQLite or Postgres), through SQLAlchemy Core.

A batch is one transaction, like the projections' (adapters/projections/sql.py): lock the
checkpoint row (SQLite: BEGIN IMMEDIATE, the whole database's write lock; Postgres: the upsert
of the row, which a second notifier waits on), read the events after it, insert the outbox rows
the plan makes of them (ON CONFLICT DO NOTHING on (source, user, channel): a row already
queued stays as it is), move the checkpoint, commit. A crash before the commit leaves nothing;
the rerun plans the same batch once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.eventstore.schema import events, notification_leases, notification_outbox, proj_checkpoints
from adapters.eventstore.sqlalchemy_store import recorded_from_row
from application.notifications import (
    DELIVERED,
    NOTIFIER,
    PENDING,
    UNDELIVERED,
    HistoryReader,
    OutboxEntry,
    Plan,
    Queued,
)
from domain.events import Recorded

_SETTINGS_EVENT = "NotificationSettingsChanged"
_MAX_ERROR = 500


class _Reader:
    """HistoryReader on the batch's own connection (inside its transaction)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def stream(self, stream_id: str) -> list[Recorded]:
        result = await self._conn.execute(
            select(events).where(events.c.stream_id == stream_id).order_by(events.c.version))
        return [recorded_from_row(row) for row in result.all()]

    async def subscribers(self) -> list[str]:
        stmt = select(events.c.user_id).where(events.c.event_type == _SETTINGS_EVENT)
        result = await self._conn.execute(stmt.distinct().order_by(events.c.user_id))
        return [row[0] for row in result.all()]


class SqlNotificationOutbox:
    def __init__(self, engine: AsyncEngine, name: str = NOTIFIER) -> None:
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(f"the notification outbox runs on SQLite or Postgres, not {engine.dialect.name}")
        self._engine = engine
        self._name = name
        self._sqlite = engine.dialect.name == "sqlite"
        self._held_by: str | None = None
        self._held_until: datetime | None = None

    @asynccontextmanager
    async def _writing(self):  # noqa: ANN202
        async with self._engine.connect() as conn, conn.begin():
            if self._sqlite:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def _insert(self, table: Any) -> Any:
        return sqlite_insert(table) if self._sqlite else pg_insert(table)

    # --- planning ------------------------------------------------------------------------

    async def queue_events(self, plan: Plan, now: datetime, batch: int = 500) -> int:
        if not await self._behind():
            return 0  # a lock-free look first: an idle poll never takes the write lock from the traders
        async with self._writing() as conn:
            checkpoint = await self._lock_checkpoint(conn)
            result = await conn.execute(
                select(events).where(events.c.position > checkpoint).order_by(events.c.position).limit(batch))
            records = [recorded_from_row(row) for row in result.all()]
            if not records:
                return 0
            await self._write(conn, await plan(records, _Reader(conn)), now)
            await conn.execute(update(proj_checkpoints).where(proj_checkpoints.c.name == self._name)
                               .values(position=records[-1].position))
        return len(records)

    async def queue(self, rows: Sequence[Queued], now: datetime) -> int:
        if not rows:
            return 0
        async with self._writing() as conn:
            return await self._write(conn, rows, now)

    async def subscribers_plan(self, plan: Callable[[HistoryReader], Awaitable[list[Queued]]], now: datetime) -> int:
        async with self._engine.connect() as conn:
            rows = await plan(_Reader(conn))
        return await self.queue(rows, now)

    async def _behind(self) -> bool:
        async with self._engine.connect() as conn:
            last = await conn.scalar(select(func.max(events.c.position)))
            done = await conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name))
        return int(last or 0) > int(done or 0)

    async def _lock_checkpoint(self, conn: AsyncConnection) -> int:
        if self._sqlite:
            first_use = sqlite_insert(proj_checkpoints).values(name=self._name, position=0).on_conflict_do_nothing()
            await conn.execute(first_use)
            value = await conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name))
        else:
            value = await conn.scalar(text(
                "INSERT INTO proj_checkpoints (name, position) VALUES (:name, 0)"
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position"), {"name": self._name})
        return int(value or 0)

    async def _write(self, conn: AsyncConnection, rows: Sequence[Queued], now: datetime) -> int:
        if not rows:
            return 0
        values = [{
            "source": r.source, "event_position": r.event_position, "user_id": r.user_id, "channel": r.channel,
            "kind": r.kind, "title": r.title, "body": r.body, "silent": r.silent, "status": PENDING, "attempts": 0,
            "created_at": now, "next_attempt_at": now,
        } for r in rows]
        stmt = self._insert(notification_outbox).on_conflict_do_nothing(index_elements=["source", "user_id", "channel"])
        result = await conn.execute(stmt, values)
        return max(int(result.rowcount or 0), 0)

    async def checkpoint(self) -> int:
        async with self._engine.connect() as conn:
            value = await conn.scalar(select(proj_checkpoints.c.position).where(proj_checkpoints.c.name == self._name))
        return int(value or 0)

    # --- delivery ------------------------------------------------------------------------

    async def pending(self, limit: int = 500) -> list[OutboxEntry]:
        t = notification_outbox
        return await self._entries(select(t).where(t.c.status == PENDING).order_by(t.c.id).limit(limit))

    async def for_user(self, user_id: str, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        t = notification_outbox
        stmt = select(t).where(t.c.user_id == user_id).order_by(t.c.id.desc()).limit(max(limit, 0))
        if status is not None:
            stmt = stmt.where(t.c.status == status)
        return await self._entries(stmt)

    async def _entries(self, stmt: Any) -> list[OutboxEntry]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [OutboxEntry(
            id=int(r.id), source=r.source, event_position=r.event_position, user_id=r.user_id, channel=r.channel,
            kind=r.kind, title=r.title, body=r.body, silent=bool(r.silent), status=r.status, attempts=int(r.attempts),
            created_at=r.created_at, next_attempt_at=r.next_attempt_at, delivered_at=r.delivered_at,
            last_error=r.last_error,
        ) for r in rows]

    async def _set(self, entry_id: int, **values: Any) -> None:
        t = notification_outbox
        async with self._engine.begin() as conn:
            await conn.execute(update(t).where(t.c.id == entry_id, t.c.status == PENDING).values(**values))

    async def delivered(self, entry_id: int, at: datetime, attempts: int) -> None:
        await self._set(entry_id, status=DELIVERED, delivered_at=at, attempts=attempts, last_error=None)

    async def retry_later(self, entry_id: int, attempts: int, at: datetime, error: str) -> None:
        await self._set(entry_id, attempts=attempts, next_attempt_at=at, last_error=error[:_MAX_ERROR])

    async def give_up(self, entry_id: int, attempts: int, error: str) -> None:
        await self._set(entry_id, status=UNDELIVERED, attempts=attempts, last_error=error[:_MAX_ERROR])

    # --- the lease -----------------------------------------------------------------------

    async def hold_lease(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Renewed only when less than half of `ttl` is left: a poll rarely writes."""
        if self._held_until is not None and self._held_by == holder and now < self._held_until - ttl / 2:
            return True
        t = notification_leases
        async with self._writing() as conn:
            await conn.execute(self._insert(t).values(name=self._name, holder=holder, expires_at=now + ttl)
                               .on_conflict_do_nothing(index_elements=["name"]))
            result = await conn.execute(
                update(t).where(t.c.name == self._name, or_(t.c.holder == holder, t.c.expires_at <= now))
                .values(holder=holder, expires_at=now + ttl))
        held = bool(result.rowcount)
        self._held_by, self._held_until = (holder, now + ttl) if held else (None, None)
        return held

    async def release_lease(self, holder: str) -> None:
        self._held_by, self._held_until = None, None
        t = notification_leases
        async with self._engine.begin() as conn:
            await conn.execute(delete(t).where(and_(t.c.name == self._name, t.c.holder == holder)))
