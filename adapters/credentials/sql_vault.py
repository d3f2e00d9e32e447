"""CredentialVault on SQL (SQLite or Postgres, the same code): the `credentials` table of
migration 0004 holds one sealed row per user (adapters/credentials/rows.py). A change with a
CredentialsRecord appends its event in the same transaction as the row (the event store is
on the same database): both commit or neither."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.credentials.rows import CredentialRow, open_row, resealed, seal_row, summary_of
from adapters.eventstore.schema import credentials as table
from adapters.eventstore.sqlalchemy_store import SqlEventStore
from adapters.security.sealing import KeyRing
from application.credentials import ApiCredentials, CredentialsRecord, CredentialSummary, credentials_stream

# Any fixed 64-bit number: `reseal_all` and `put` take it so a rotation sees every row once.
_PG_CREDENTIALS_LOCK = 0x6D657863_63726564  # "mexccred"


class SqlCredentialVault:
    def __init__(self, engine: AsyncEngine, ring: KeyRing) -> None:
        self._engine = engine
        self._ring = ring
        self._dialect = engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"SqlCredentialVault supports SQLite and Postgres, not {self._dialect}")

    @property
    def ring(self) -> KeyRing:
        return self._ring

    async def put(
        self, user_id: str, credentials: ApiCredentials, at: datetime, record: CredentialsRecord | None = None
    ) -> CredentialSummary:
        history = self._history(record)
        row = seal_row(self._ring, user_id, credentials, at, at)
        values = _values(row)
        insert = (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table).values(**values)
        # Replacing keeps the first stored_at.
        stmt = insert.on_conflict_do_update(
            index_elements=[table.c.user_id],
            set_={k: insert.excluded[k] for k in values if k not in ("user_id", "stored_at")},
        ).returning(*table.c)
        async with self._engine.connect() as conn, conn.begin():
            await self._lock(conn)
            before = await _load_in(conn, user_id) if record is not None else None
            after = summary_of(_row((await conn.execute(stmt)).one()))
            if record is not None and history is not None:
                await _record_in(conn, history, record, user_id, summary_of(before) if before else None, after)
        return after

    async def summary(self, user_id: str) -> CredentialSummary | None:
        row = await self._load(user_id)
        return summary_of(row) if row else None

    async def reveal(self, user_id: str) -> ApiCredentials | None:
        """Only the exchange adapter signing for this user may call this."""
        row = await self._load(user_id)
        return open_row(self._ring, row) if row else None

    async def delete(self, user_id: str, record: CredentialsRecord | None = None) -> bool:
        history = self._history(record)
        async with self._engine.connect() as conn, conn.begin():
            await self._lock(conn)
            before = await _load_in(conn, user_id) if record is not None else None
            result = await conn.execute(delete(table).where(table.c.user_id == user_id))
            if result.rowcount > 0 and record is not None and history is not None and before is not None:
                await _record_in(conn, history, record, user_id, summary_of(before), None)
        return result.rowcount > 0

    def _history(self, record: CredentialsRecord | None) -> SqlEventStore | None:
        """The event store a record goes to: it must be on this vault's database, where one
        transaction holds both."""
        if record is None:
            return None
        if not isinstance(record.store, SqlEventStore) or record.store.engine is not self._engine:
            raise ValueError("a SQL vault records its changes on the event store of its own database")
        return record.store

    async def reseal_all(self, ring: KeyRing | None = None) -> int:
        """Re-seal every row not under the current key of `ring` (default: this vault's ring)
        in one transaction: all rows move or none (a row that does not open stops it). Rows
        already current are not touched, so running it again moves nothing. Afterwards the
        vault uses `ring`. Returns how many rows moved."""
        ring = ring or self._ring
        moved = 0
        async with self._engine.connect() as conn, conn.begin():
            await self._lock(conn)
            result = await conn.execute(select(table).where(table.c.key_version != ring.current_version))
            for stored in result.all():
                old = _row(stored)
                fresh = resealed(ring, old)
                if fresh is None:  # pragma: no cover - filtered by the query
                    continue
                await conn.execute(
                    update(table)
                    .where(table.c.user_id == old.user_id, table.c.key_version == old.key_version)
                    .values(
                        key_version=fresh.key_version,
                        api_key_sealed=fresh.api_key_sealed,
                        secret_key_sealed=fresh.secret_key_sealed,
                    )
                )
                moved += 1
        self._ring = ring
        return moved

    async def count_by_version(self) -> dict[int, int]:
        """How many rows each key version sealed (for `sniper keys rotate` and tests)."""
        async with self._engine.connect() as conn:
            result = await conn.execute(select(table.c.key_version, func.count()).group_by(table.c.key_version))
            return {int(v): int(n) for v, n in result.all()}

    async def _load(self, user_id: str) -> CredentialRow | None:
        async with self._engine.connect() as conn:
            return await _load_in(conn, user_id)

    async def _lock(self, conn: AsyncConnection) -> None:
        if self._dialect == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_CREDENTIALS_LOCK})


async def _load_in(conn: AsyncConnection, user_id: str) -> CredentialRow | None:
    stored = (await conn.execute(select(table).where(table.c.user_id == user_id))).one_or_none()
    return _row(stored) if stored is not None else None


async def _record_in(
    conn: AsyncConnection, history: SqlEventStore, record: CredentialsRecord, user_id: str,
    before: CredentialSummary | None, after: CredentialSummary | None,
) -> None:
    event = record.event(before, after)
    if event is not None:
        await history.append_in(
            conn, credentials_stream(user_id), lambda version: record.recorded(user_id, version, event)
        )


def _values(row: CredentialRow) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "key_version": row.key_version,
        "api_key_sealed": row.api_key_sealed,
        "secret_key_sealed": row.secret_key_sealed,
        "api_key_hint": row.api_key_hint,
        "stored_at": row.stored_at,
        "updated_at": row.updated_at,
    }


def _row(stored: Any) -> CredentialRow:
    m = stored._mapping
    return CredentialRow(
        user_id=m["user_id"],
        key_version=int(m["key_version"]),
        api_key_sealed=m["api_key_sealed"],
        secret_key_sealed=m["secret_key_sealed"],
        api_key_hint=m["api_key_hint"],
        stored_at=m["stored_at"],
        updated_at=m["updated_at"],
    )
