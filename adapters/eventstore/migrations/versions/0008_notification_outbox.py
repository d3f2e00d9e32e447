"""Trade notifications (issue 16): the outbox of messages to each user's channels, and the lease
that keeps one deliverer across workers (adapters/notifications/outbox.py). The notifier's
checkpoint is a row of proj_checkpoints ("notifications").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created from the metadata (create_schema) has the tables already: keep them.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "notification_outbox" not in existing:
        op.create_table(
            "notification_outbox",
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
            sa.Column("source", sa.String(100), nullable=False),
            sa.Column("event_position", sa.BigInteger, nullable=True),
            sa.Column("user_id", sa.String(200), nullable=False),
            sa.Column("channel", sa.String(20), nullable=False),
            sa.Column("kind", sa.String(40), nullable=False),
            sa.Column("title", sa.Text, nullable=False),
            sa.Column("body", sa.Text, nullable=False),
            sa.Column("silent", sa.Boolean, nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text, nullable=True),
            sa.UniqueConstraint("source", "user_id", "channel", name="uq_notification_outbox_source"),
            sa.PrimaryKeyConstraint("id", name="pk_notification_outbox"),
            sqlite_autoincrement=True,
        )
        op.create_index("ix_notification_outbox_status", "notification_outbox", ["status", "next_attempt_at"])
        op.create_index("ix_notification_outbox_user_id", "notification_outbox", ["user_id", "id"])
    if "notification_leases" not in existing:
        op.create_table(
            "notification_leases",
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("holder", sa.String(200), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("name", name="pk_notification_leases"),
        )


def downgrade() -> None:
    op.drop_table("notification_leases")
    op.drop_index("ix_notification_outbox_user_id", table_name="notification_outbox")
    op.drop_index("ix_notification_outbox_status", table_name="notification_outbox")
    op.drop_table("notification_outbox")
