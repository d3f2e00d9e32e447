"""Snapshots of long streams: the newest folded state per stream, with its version and shape.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created from the metadata before migrations (create_schema) already has it: keep it.
    if "snapshots" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "snapshots",
        sa.Column("stream_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("shape", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name="pk_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("snapshots")
