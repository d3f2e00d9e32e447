"""Schema migrations (Alembic) for SQLite and Postgres, run from code by `sniper migrate`.

A brand-new empty database is initialised at the newest revision on first use; a database
holding an older schema is never migrated behind an operator's back: the program refuses
to start and says to run `sniper migrate`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from application.errors import ConfigurationError

_SCRIPTS = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number, not the store's append lock: held while the schema is brought up.
_PG_MIGRATE_LOCK = 0x6D657863_6D696772  # "mexcmigr"


class SchemaOutOfDate(ConfigurationError):
    pass


class SchemaStatus(Enum):
    EMPTY = "empty"
    CURRENT = "current"
    OUTDATED = "outdated"
    AHEAD = "ahead"  # written by a newer version of this program


@dataclass(frozen=True, slots=True)
class SchemaState:
    status: SchemaStatus
    revision: str | None
    head: str


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("the migrations have no head revision")
    return head


def _state(connection: Connection) -> SchemaState:
    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        has_tables = bool(inspect(connection).get_table_names())
        return SchemaState(SchemaStatus.OUTDATED if has_tables else SchemaStatus.EMPTY, None, head)
    if current == head:
        return SchemaState(SchemaStatus.CURRENT, current, head)
    known = {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}
    return SchemaState(SchemaStatus.OUTDATED if current in known else SchemaStatus.AHEAD, current, head)


async def schema_state(engine: AsyncEngine) -> SchemaState:
    async with engine.connect() as conn:
        return await conn.run_sync(_state)


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; idempotent. Returns (before, after).

    Processes started together on a new database (two workers, a worker and `sniper migrate`)
    would otherwise all see it empty and race to create the same tables; the loser crashed on
    a duplicate key. Each takes a database-wide lock first, then reads the revision, so the
    later ones find the schema done and do nothing."""

    def run(connection: Connection) -> tuple[str | None, str]:
        _lock_for_migration(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(_config(connection), "head")
        return before, head_revision()

    async with engine.begin() as conn:
        return await conn.run_sync(run)


def _lock_for_migration(connection: Connection) -> None:
    """First statement of the migrating transaction: one migrator per database at a time."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATE_LOCK})
    elif connection.dialect.name == "sqlite":
        # The driver opens its transaction lazily; IMMEDIATE takes the write lock now (waiting
        # up to the busy timeout), before the revision is read.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def ensure_schema(engine: AsyncEngine, initialise_empty: bool) -> None:
    state = await schema_state(engine)
    # Tables but no revision yet: another process may be initialising this new database right
    # now (two workers started together). Give it a moment before calling the schema outdated.
    for _ in range(50):
        if not (initialise_empty and state.status is SchemaStatus.OUTDATED and state.revision is None):
            break
        await asyncio.sleep(0.1)
        state = await schema_state(engine)
    if state.status is SchemaStatus.CURRENT:
        return
    if state.status is SchemaStatus.EMPTY and initialise_empty:
        await upgrade(engine)
        return
    if state.status is SchemaStatus.EMPTY:
        raise SchemaOutOfDate("the database holds no trade history yet (run `sniper migrate` or `sniper demo`)")
    if state.status is SchemaStatus.AHEAD:
        raise SchemaOutOfDate(
            f"the database schema ({state.revision}) is newer than this program knows ({state.head}): "
            "upgrade mexc-sniper"
        )
    raise SchemaOutOfDate(
        f"the database schema is out of date ({state.revision or 'unversioned'}, need {state.head}): "
        "run `sniper migrate`"
    )
