"""Snipe targets say whether they trade real money (live) or paper: proj_targets.live, filled for
the rows projected before from the events that created them (SnipeTargetCreated.live).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created from the metadata (create_schema) has the column already: keep it.
    if "live" in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("proj_targets")}:
        return
    with op.batch_alter_table("proj_targets") as batch:
        batch.add_column(sa.Column("live", sa.Boolean, nullable=False, server_default=sa.false()))
    # The payload is msgspec's compact JSON of SnipeTargetCreated, with a `live` field (no other
    # field of it is named so; fields added after it, e.g. max_entry_price in 0007, follow it);
    # the target's stream is `target-<target id>`.
    op.execute(sa.text(
        "UPDATE proj_targets SET live = TRUE WHERE 'target-' || target_id IN ("
        "SELECT stream_id FROM events WHERE event_type = 'SnipeTargetCreated' AND payload LIKE :live)"
    ).bindparams(live='%"live":true%'))


def downgrade() -> None:
    with op.batch_alter_table("proj_targets") as batch:
        batch.drop_column("live")
