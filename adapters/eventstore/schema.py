"""The database's tables, shared by the event store, the projections and schema migrations.

`events` is the trade history: the global `position` orders the whole history, and the
unique (stream_id, version) pair is what makes two writers unable to both append version N.

The `proj_*` tables are projections of it (adapters/projections/), rebuilt from `events` at
will; `proj_checkpoints` holds, per projection, the position of the last event it applied,
and moves in the same transaction as the projection's rows.

Money and quantities are stored as the exact decimal string (TEXT): SQLite's NUMERIC goes
through a float. They are compared and summed in Python, never in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

# Explicit names so migrations and the conflict detection in the store can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

STREAM_VERSION_CONSTRAINT = "uq_events_stream_version"

events = Table(
    "events",
    metadata,
    # On SQLite an INTEGER PRIMARY KEY is the rowid: BIGINT would not autoincrement there.
    Column("position", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("stream_id", "version", name=STREAM_VERSION_CONSTRAINT),
    # One user's audit trail in order is a range scan of this index.
    Index("ix_events_user_id_position", "user_id", "position"),
    Index("ix_events_correlation_id", "correlation_id"),
    # AUTOINCREMENT: SQLite never hands out a position twice, even after the last row went.
    sqlite_autoincrement=True,
)


# The newest snapshot of a long stream (application/repository.py, migration 0003): the folded
# state at `version` as the JSON of its aggregate's msgspec struct (adapters/eventstore/snapshot_codec.py).
# `shape` names the aggregate's fields when it was taken; one of another shape is ignored. A cache
# of `events`: deleting any row is always safe.
snapshots = Table(
    "snapshots",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("shape", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("taken_at", DateTime(timezone=True), nullable=False),
)


# --- column types of the projections -----------------------------------------------------

class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored as its exact string (TEXT): digits and exponent come back unchanged."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError(f"an exact decimal column takes a finite Decimal, not {value!r}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC; comes back aware in UTC (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            # Only a payload time recorded without an offset: read it as UTC (as the store reads
            # SQLite's times) rather than stop the projection on it.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _money(name: str, nullable: bool = False) -> Column[Decimal]:
    return Column(name, ExactDecimal(), nullable=nullable)


# The global position of the event that first recorded a row: lists come in that order.
def _first_event() -> Column[int]:
    return Column("first_event", BigInteger, nullable=False)


# --- projections -----------------------------------------------------------------------------

proj_checkpoints = Table(
    "proj_checkpoints",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

proj_targets = Table(
    "proj_targets",
    metadata,
    Column("target_id", String(200), primary_key=True),
    Column("user_id", String(200), nullable=False),
    Column("coin_id", String(200), nullable=False),
    Column("symbol", String(50), nullable=False),
    Column("launch_at", UtcDateTime(), nullable=True),  # NULL: a target seen before its creation
    _money("quote_amount"),
    Column("exit_strategy", String(100), nullable=False),
    Column("status", String(20), nullable=False),
    _money("confidence"),
    Column("execute_at", UtcDateTime(), nullable=True),
    Column("reason", Text, nullable=True),
    _first_event(),
    # Real money on MEXC (true) or paper; added in 0006, after first_event.
    Column("live", Boolean, nullable=False, server_default=false()),
    # The entry's price cap (NULL: a market buy); added in 0007.
    _money("max_entry_price", nullable=True),
    Index("ix_proj_targets_user_id", "user_id", "first_event"),
)

proj_positions = Table(
    "proj_positions",
    metadata,
    Column("position_id", String(200), primary_key=True),
    Column("target_id", String(200), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("symbol", String(50), nullable=False),
    Column("quote_asset", String(20), nullable=False),
    _money("entry_price"),
    _money("quantity"),
    _money("remaining"),
    _money("cost"),
    _money("remaining_cost"),
    _money("proceeds"),
    _money("fees"),
    _money("realised_pnl"),
    Column("status", String(20), nullable=False),
    Column("last_exit", String(100), nullable=True),
    Column("opened_at", UtcDateTime(), nullable=True),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("exits", Text, nullable=False),  # exit event types, space separated, in order
    _first_event(),
    Index("ix_proj_positions_user_id", "user_id", "first_event"),
)

proj_trades = Table(
    "proj_trades",
    metadata,
    # The event that recorded the fill: one fill per event.
    Column("event_position", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", String(200), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("position_id", String(200), nullable=False),
    Column("target_id", String(200), nullable=False),
    Column("symbol", String(50), nullable=False),
    Column("side", String(16), nullable=False),  # BUY, SELL, WRITE_OFF (migration 0005)
    Column("event_type", String(100), nullable=False),
    _money("price"),
    _money("quantity"),
    _money("quote_amount"),
    _money("fee"),
    Column("fee_asset", String(20), nullable=False),
    _money("realised_pnl"),
    Column("client_order_id", String(100), nullable=True),
    Index("ix_proj_trades_user_id", "user_id", "event_position"),
)

proj_daily_pnl = Table(
    "proj_daily_pnl",
    metadata,
    Column("user_id", String(200), nullable=False),
    Column("day", Date, nullable=False),
    _money("realised_pnl"),
    PrimaryKeyConstraint("user_id", "day"),
)

proj_emergency_stops = Table(
    "proj_emergency_stops",
    metadata,
    Column("scope", String(200), primary_key=True),  # "global" or a user id
    Column("reason", Text, nullable=False),
)


# --- credentials (adapters/credentials/sql_vault.py, migration 0004) -------------------------
# Only sealed values (AES-256-GCM, adapters/security/sealing.py) and a short hint of the API key;
# `key_version` names the key that sealed the row, so `sniper keys rotate` knows what to move.

credentials = Table(
    "credentials",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("key_version", Integer, nullable=False),
    Column("api_key_sealed", Text, nullable=False),
    Column("secret_key_sealed", Text, nullable=False),
    Column("api_key_hint", String(40), nullable=False),
    Column("stored_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)


# --- notifications (adapters/notifications/outbox.py, migration 0008) ------------------------
# One row per message and channel, written before anything is sent: `source` is what it tells
# ("event:<position>" or "daily:<day>"), unique with the user and the channel, so a rerun of the
# notifier's batch cannot queue a message twice. No secrets here: the channel's address is read
# from the user's settings when the message is sent.

notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),
    Column("event_position", BigInteger, nullable=True),
    Column("user_id", String(200), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("silent", Boolean, nullable=False),
    Column("status", String(20), nullable=False),  # pending, delivered, undelivered
    Column("attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("source", "user_id", "channel", name="uq_notification_outbox_source"),
    Index("ix_notification_outbox_status", "status", "next_attempt_at"),
    Index("ix_notification_outbox_user_id", "user_id", "id"),
    sqlite_autoincrement=True,
)

# Who delivers notifications: one holder across workers, until `expires_at` unless renewed.
notification_leases = Table(
    "notification_leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)
