"""Models of the events API: what it accepts and answers (they document it in /openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from kernel.bus.store import REASONS
from kernel.bus.topics import TopicError, check_filter


def _pattern(value: str | None) -> str | None:
    if value is not None:
        try:
            check_filter(value)
        except TopicError as exc:
            raise ValueError(str(exc)) from None
    return value


class Page(BaseModel):
    """Cursor pagination shared by every listing."""

    limit: int = Field(50, ge=1, le=500, description="Items per page")
    cursor: str | None = Field(None, description="next_cursor of the previous page")


class EventQuery(Page):
    """Filters of ``GET /api/v1/events`` (all optional, combined with AND)."""

    topic: str | None = Field(None, description="MQTT topic filter, e.g. tracker/events/projects/#")
    type: str | None = Field(None, description="Exact event type, e.g. projects.created")
    subject_id: str | None = None
    actor_id: str | None = None
    since: AwareDatetime | None = Field(None, description="occurred_at at or after (RFC 3339)")
    until: AwareDatetime | None = Field(None, description="occurred_at before (RFC 3339)")

    _topic = field_validator("topic")(_pattern)


class StreamQuery(BaseModel):
    """Filters of the live stream."""

    topic: str | None = Field(None, description="MQTT topic filter")
    type: str | None = Field(None, description="Exact event type")
    last_event_id: int | None = Field(None, ge=0, le=2**63 - 1, description="Resume after this id (like Last-Event-ID)")

    _topic = field_validator("topic")(_pattern)


class ActorOut(BaseModel):
    """Who caused an event."""

    id: str
    role: str


class EventOut(BaseModel):
    """A mirrored event: its envelope plus where it sits in the mirror."""

    id: UUID
    type: str
    topic: str
    source: str
    occurred_at: datetime
    actor: ActorOut | None
    trace_id: str | None
    subject_id: str | None
    schema_version: int
    payload: dict[str, Any]
    seq: int = Field(description="Position in the mirror; the live stream's event id")
    mirrored_at: datetime
    handled: bool = Field(description="Every handler has run (or been dead-lettered)")


class EventPage(BaseModel):
    """One page of events; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[EventOut]
    next_cursor: str | None = None


Reason = Literal["handler-failed", "malformed", "oversized", "unknown-schema-version"]
assert set(Reason.__args__) == set(REASONS)  # type: ignore[attr-defined]


class DeadLetterQuery(Page):
    """Filters of ``GET /api/v1/dlq``."""

    handler: str | None = Field(None, description="Handler name, e.g. projects.rollups")
    reason: Reason | None = None
    topic: str | None = Field(None, description="MQTT topic filter")
    since: AwareDatetime | None = Field(None, description="Dead-lettered at or after")
    until: AwareDatetime | None = Field(None, description="Dead-lettered before")

    _topic = field_validator("topic")(_pattern)


class DeadLetterOut(BaseModel):
    """A dead-lettered handler run, or an unusable message (``handler`` null, ``raw`` set)."""

    id: UUID
    event_id: UUID | None
    topic: str
    type: str | None
    subject_id: str | None
    handler: str | None
    reason: Reason
    error: str
    traceback: str | None
    attempts: int
    event: dict[str, Any] | None
    raw: str | None
    created_at: datetime
    last_attempt_at: datetime


class DeadLetterPage(BaseModel):
    """One page of dead letters; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[DeadLetterOut]
    next_cursor: str | None = None


class ReplayFilter(BaseModel):
    """Which dead letters ``POST /api/v1/dlq/replay`` replays (oldest first, at most ``limit``)."""

    ids: list[UUID] | None = Field(None, max_length=500, description="These entries only")
    handler: str | None = None
    reason: Reason | None = None
    topic: str | None = Field(None, description="MQTT topic filter")
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(100, ge=1, le=500)

    _topic = field_validator("topic")(_pattern)


class ReplayOut(BaseModel):
    """The outcome of replaying one entry: ``replayed`` (and removed) or ``failed`` (kept, updated)."""

    id: UUID
    status: Literal["replayed", "failed"]
    error: str | None = None


class ReplaySummary(BaseModel):
    """What a bulk replay did, entry by entry."""

    replayed: int
    failed: int
    items: list[ReplayOut]
