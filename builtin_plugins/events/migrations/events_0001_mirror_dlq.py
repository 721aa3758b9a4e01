"""Events tables: events_mirror, event_claims and dlq_events.

Revision ID: events_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "events_0001"
down_revision = None
branch_labels = ("events",)
depends_on = "kernel_0002"

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events_mirror",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=True),
        sa.Column("actor_id", sa.String(200), nullable=True),
        sa.Column("actor_role", sa.String(50), nullable=True),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        _when("occurred_at"),
        _when("mirrored_at"),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.UniqueConstraint("id", name="uq_events_mirror_id"),
        sqlite_autoincrement=True,
    )
    for name, columns in (
        ("ix_events_mirror_type_seq", ["type", "seq"]),
        ("ix_events_mirror_topic_seq", ["topic", "seq"]),
        ("ix_events_mirror_subject_seq", ["subject_id", "seq"]),
        ("ix_events_mirror_actor_seq", ["actor_id", "seq"]),
        ("ix_events_mirror_occurred_at", ["occurred_at"]),
    ):
        op.create_index(name, "events_mirror", columns)

    op.create_table(
        "event_claims",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        _when("expires_at"),
    )
    op.create_index("ix_event_claims_expires_at", "event_claims", ["expires_at"])

    op.create_table(
        "dlq_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("type", sa.String(200), nullable=True),
        sa.Column("subject_id", sa.String(200), nullable=True),
        sa.Column("handler", sa.String(200), nullable=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("event", JSONDocument, nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        _when("created_at"),
        _when("last_attempt_at"),
    )
    for name, columns in (
        ("ix_dlq_events_handler_id", ["handler", "id"]),
        ("ix_dlq_events_reason_id", ["reason", "id"]),
        ("ix_dlq_events_topic_id", ["topic", "id"]),
        ("ix_dlq_events_event_id", ["event_id"]),
        ("ix_dlq_events_created_at", ["created_at"]),
    ):
        op.create_index(name, "dlq_events", columns)


def downgrade() -> None:
    op.drop_table("dlq_events")
    op.drop_table("event_claims")
    op.drop_table("events_mirror")
