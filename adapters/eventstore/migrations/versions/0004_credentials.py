"""Users' exchange credentials, sealed (AES-256-GCM) under a versioned key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A store created from the metadata before migrations (create_schema) already has it: keep it.
    if "credentials" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "credentials",
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("key_version", sa.Integer, nullable=False),
        sa.Column("api_key_sealed", sa.Text, nullable=False),
        sa.Column("secret_key_sealed", sa.Text, nullable=False),
        sa.Column("api_key_hint", sa.String(40), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_credentials"),
    )


def downgrade() -> None:
    op.drop_table("credentials")
