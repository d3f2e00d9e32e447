"""Snipe targets may cap their entry price (issue 14): proj_targets.max_entry_price, NULL for a
market buy. No backfill: no target recorded before this revision has a cap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created from the metadata (create_schema) has the column already: keep it.
    if "max_entry_price" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("proj_targets")}:
        return
    with op.batch_alter_table("proj_targets") as batch:
        # Text, as every money column of the projections (adapters/eventstore/schema.py ExactDecimal).
        batch.add_column(sa.Column("max_entry_price", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("proj_targets") as batch:
        batch.drop_column("max_entry_price")
