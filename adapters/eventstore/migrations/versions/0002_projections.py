"""Projections (targets, positions, trades, daily P&L, emergency stops) with their checkpoints;
one user's events in order by an index on (user_id, position).

Money is TEXT holding the exact decimal string (SQLite's NUMERIC goes through a float).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("proj_checkpoints", "proj_targets", "proj_positions", "proj_trades", "proj_daily_pnl", "proj_emergency_stops")


def _money(name: str) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=False)


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # A store created from the metadata before migrations (create_schema) already has these: keep them.
    existing = set(inspector.get_table_names())
    event_indexes = {ix["name"] for ix in inspector.get_indexes("events")}

    if "ix_events_user_id_position" not in event_indexes:
        op.create_index("ix_events_user_id_position", "events", ["user_id", "position"])
    if "ix_events_user_id" in event_indexes:  # the new index serves every lookup by user
        op.drop_index("ix_events_user_id", table_name="events")

    if "proj_checkpoints" not in existing:
        op.create_table(
            "proj_checkpoints",
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("position", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("name", name="pk_proj_checkpoints"),
        )

    if "proj_targets" not in existing:
        op.create_table(
            "proj_targets",
            sa.Column("target_id", sa.String(200), nullable=False),
            sa.Column("user_id", sa.String(200), nullable=False),
            sa.Column("coin_id", sa.String(200), nullable=False),
            sa.Column("symbol", sa.String(50), nullable=False),
            _when("launch_at"),
            _money("quote_amount"),
            sa.Column("exit_strategy", sa.String(100), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            _money("confidence"),
            _when("execute_at"),
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("first_event", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("target_id", name="pk_proj_targets"),
        )
        op.create_index("ix_proj_targets_user_id", "proj_targets", ["user_id", "first_event"])

    if "proj_positions" not in existing:
        op.create_table(
            "proj_positions",
            sa.Column("position_id", sa.String(200), nullable=False),
            sa.Column("target_id", sa.String(200), nullable=False),
            sa.Column("user_id", sa.String(200), nullable=False),
            sa.Column("symbol", sa.String(50), nullable=False),
            sa.Column("quote_asset", sa.String(20), nullable=False),
            _money("entry_price"),
            _money("quantity"),
            _money("remaining"),
            _money("cost"),
            _money("remaining_cost"),
            _money("proceeds"),
            _money("fees"),
            _money("realised_pnl"),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("last_exit", sa.String(100), nullable=True),
            _when("opened_at"),
            _when("closed_at"),
            sa.Column("exits", sa.Text, nullable=False),
            sa.Column("first_event", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("position_id", name="pk_proj_positions"),
        )
        op.create_index("ix_proj_positions_user_id", "proj_positions", ["user_id", "first_event"])

    if "proj_trades" not in existing:
        op.create_table(
            "proj_trades",
            sa.Column("event_position", sa.BigInteger, nullable=False, autoincrement=False),
            sa.Column("user_id", sa.String(200), nullable=False),
            _when("occurred_at", nullable=False),
            sa.Column("position_id", sa.String(200), nullable=False),
            sa.Column("target_id", sa.String(200), nullable=False),
            sa.Column("symbol", sa.String(50), nullable=False),
            sa.Column("side", sa.String(4), nullable=False),
            sa.Column("event_type", sa.String(100), nullable=False),
            _money("price"),
            _money("quantity"),
            _money("quote_amount"),
            _money("fee"),
            sa.Column("fee_asset", sa.String(20), nullable=False),
            _money("realised_pnl"),
            sa.Column("client_order_id", sa.String(100), nullable=True),
            sa.PrimaryKeyConstraint("event_position", name="pk_proj_trades"),
        )
        op.create_index("ix_proj_trades_user_id", "proj_trades", ["user_id", "event_position"])

    if "proj_daily_pnl" not in existing:
        op.create_table(
            "proj_daily_pnl",
            sa.Column("user_id", sa.String(200), nullable=False),
            sa.Column("day", sa.Date, nullable=False),
            _money("realised_pnl"),
            sa.PrimaryKeyConstraint("user_id", "day", name="pk_proj_daily_pnl"),
        )

    if "proj_emergency_stops" not in existing:
        op.create_table(
            "proj_emergency_stops",
            sa.Column("scope", sa.String(200), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.PrimaryKeyConstraint("scope", name="pk_proj_emergency_stops"),
        )


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
    op.create_index("ix_events_user_id", "events", ["user_id"])
    op.drop_index("ix_events_user_id_position", table_name="events")
