"""The event store's tables, shared by the store and by schema migrations.

One table, `events`: the global `position` orders the whole history, and the unique
(stream_id, version) pair is what makes two writers unable to both append version N.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
    Index("ix_events_user_id", "user_id"),
    Index("ix_events_correlation_id", "correlation_id"),
    # AUTOINCREMENT: SQLite never hands out a position twice, even after the last row went.
    sqlite_autoincrement=True,
)
