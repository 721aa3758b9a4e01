"""Sample plugin: index on notes.

Revision ID: sample_0002
"""

from alembic import op

revision = "sample_0002"
down_revision = "sample_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sample_notes_plugin", "sample_notes", ["plugin"])


def downgrade() -> None:
    op.drop_index("ix_sample_notes_plugin", table_name="sample_notes")
