"""Trade history: a write-off (DustWrittenOff) is its own side, WRITE_OFF, not a SELL at 0 with an
empty client order id. The side column widens to hold it; rows projected before are rewritten
as a fold of the same events now gives them (the projections must equal the trade book's).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proj_trades") as batch:
        batch.alter_column("side", existing_type=sa.String(4), type_=sa.String(16), existing_nullable=False)
    op.execute(
        "UPDATE proj_trades SET side = 'WRITE_OFF', client_order_id = NULL WHERE event_type = 'DustWrittenOff'"
    )


def downgrade() -> None:
    op.execute("UPDATE proj_trades SET side = 'SELL', client_order_id = '' WHERE event_type = 'DustWrittenOff'")
    with op.batch_alter_table("proj_trades") as batch:
        batch.alter_column("side", existing_type=sa.String(16), type_=sa.String(4), existing_nullable=False)
