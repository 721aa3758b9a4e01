"""Kernel tables: event_outbox, the transactional outbox the relay publishes from.

Revision ID: kernel_0002
Revises: kernel_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "kernel_0002"
down_revision = "kernel_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("id", name="uq_event_outbox_id"),
        sqlite_autoincrement=True,
    )
    pending = sa.text("sent_at IS NULL")
    op.create_index("ix_event_outbox_pending", "event_outbox", ["seq"], sqlite_where=pending, postgresql_where=pending)
    op.create_index("ix_event_outbox_sent_at", "event_outbox", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_event_outbox_sent_at", table_name="event_outbox")
    op.drop_index("ix_event_outbox_pending", table_name="event_outbox")
    op.drop_table("event_outbox")
