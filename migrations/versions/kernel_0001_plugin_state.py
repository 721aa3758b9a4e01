"""Kernel tables: plugin_state.

Revision ID: kernel_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "kernel_0001"
down_revision = None
branch_labels = ("kernel",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plugin_state",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
