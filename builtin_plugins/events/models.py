"""Tables of the events plugin: the mirror of every consumed event, the claims of events whose
handlers are running, and the dead-letter queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
Sequence = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable))


def _text(length: int, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.String(length), nullable=nullable))


class MirroredEvent(SQLModel, table=True):
    """One row per event ever consumed (the event id is unique: duplicate deliveries are no-ops).
    ``seq`` orders rows as they were mirrored and is the live stream's resume point."""

    __tablename__ = "events_mirror"
    __table_args__ = (
        sa.UniqueConstraint("id", name="uq_events_mirror_id"),
        sa.Index("ix_events_mirror_type_seq", "type", "seq"),
        sa.Index("ix_events_mirror_topic_seq", "topic", "seq"),
        sa.Index("ix_events_mirror_subject_seq", "subject_id", "seq"),
        sa.Index("ix_events_mirror_actor_seq", "actor_id", "seq"),
        sa.Index("ix_events_mirror_occurred_at", "occurred_at"),
        {"sqlite_autoincrement": True},  # a seq is a stream id: never reused
    )

    seq: int | None = Field(default=None, sa_column=sa.Column(Sequence, primary_key=True, autoincrement=True))
    id: UUID = Field(sa_column=sa.Column(sa.Uuid(), nullable=False))
    type: str = _text(200, nullable=False)
    topic: str = _text(255, nullable=False)
    source: str = _text(100, nullable=False)
    subject_id: str | None = _text(200)
    actor_id: str | None = _text(200)
    actor_role: str | None = _text(50)
    trace_id: str | None = _text(64)
    schema_version: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    occurred_at: datetime = _when()
    mirrored_at: datetime = _when()
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))


class EventClaim(SQLModel, table=True):
    """An event whose handlers have not all run yet, claimed by the consumer ``owner`` until
    ``expires_at``; deleted when they have. A claim left to expire (its consumer died) is taken over.
    A narrow table of its own keeps the mirror's rows written once."""

    __tablename__ = "event_claims"
    __table_args__ = (sa.Index("ix_event_claims_expires_at", "expires_at"),)

    event_id: UUID = Field(sa_column=sa.Column(sa.Uuid(), primary_key=True))
    owner: str = _text(128, nullable=False)
    expires_at: datetime = _when()


class DeadLetterEntry(SQLModel, table=True):
    """A handler that kept failing on an event, or a message that could not be used at all
    (``handler`` is null then, and ``raw`` holds its first bytes)."""

    __tablename__ = "dlq_events"
    __table_args__ = (
        sa.Index("ix_dlq_events_handler_id", "handler", "id"),
        sa.Index("ix_dlq_events_reason_id", "reason", "id"),
        sa.Index("ix_dlq_events_topic_id", "topic", "id"),
        sa.Index("ix_dlq_events_event_id", "event_id"),
        sa.Index("ix_dlq_events_created_at", "created_at"),
    )

    id: UUID = Field(sa_column=sa.Column(sa.Uuid(), primary_key=True))
    event_id: UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid(), nullable=True))
    topic: str = _text(255, nullable=False)
    type: str | None = _text(200)
    subject_id: str | None = _text(200)
    handler: str | None = _text(200)
    reason: str = _text(40, nullable=False)
    error: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    traceback: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    attempts: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    event: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONDocument, nullable=True))
    raw: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    created_at: datetime = _when()
    last_attempt_at: datetime = _when()
