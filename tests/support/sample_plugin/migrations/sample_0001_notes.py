"""Sample plugin: notes table.

Revision ID: sample_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sample_0001"
down_revision = None
branch_labels = ("sample",)
depends_on = "kernel_0001"


def upgrade() -> None:
    op.create_table(
        "sample_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("plugin", sa.String(200), sa.ForeignKey("plugin_state.name", ondelete="CASCADE")),
        sa.Column("text", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sample_notes")
