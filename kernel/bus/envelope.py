"""The event envelope every TaylorDash event travels in, on the bus and in the database."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from uuid_utils.compat import uuid7

from kernel.bus.topics import TopicError, topic_for_type

CURRENT_SCHEMA_VERSION = 1
"""The envelope schema version this kernel writes; consumers dead-letter versions they do not know."""
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})


def new_event_id() -> UUID:
    """A UUIDv7: unique, and sortable by creation time."""
    return uuid7()


class Actor(BaseModel):
    """Who caused an event: a principal's id and role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=50)


class Event(BaseModel):
    """A domain event: what happened (``type``), to what (``subject_id``), caused by whom (``actor``).

    ``topic`` is derived from ``type`` (``projects.created`` → ``tracker/events/projects/created``);
    ``occurred_at`` is UTC and serialized as RFC 3339; ``trace_id`` links the event to the request that
    produced it. Build one with :meth:`Event.create` and hand it to ``kernel.publish(session, event)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID = Field(default_factory=new_event_id, description="UUIDv7 of the event")
    type: str = Field(max_length=200, description="<family>.<action>, e.g. projects.created")
    topic: str = Field("", max_length=255, description="MQTT topic, derived from the type")
    source: str = Field(min_length=1, max_length=100, description="The plugin that published the event")
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC), description="RFC 3339, UTC")
    actor: Actor | None = Field(None, description="Who caused it, or null for the system")
    trace_id: str | None = Field(None, max_length=64, description="Trace id of the request that caused it")
    subject_id: str | None = Field(None, max_length=200, description="Id of the object the event is about")
    schema_version: int = Field(CURRENT_SCHEMA_VERSION, ge=1, description="Envelope schema version")
    payload: dict[str, Any] = Field(default_factory=dict, description="Event-specific data (a JSON object)")

    @field_validator("occurred_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.utcoffset() else value

    @model_validator(mode="after")
    def _topic_matches_type(self) -> Event:
        try:
            derived = topic_for_type(self.type)
        except TopicError as exc:
            raise ValueError(str(exc)) from None
        if not self.topic:
            object.__setattr__(self, "topic", derived)
        elif self.topic != derived:
            raise ValueError(f"topic {self.topic!r} does not match type {self.type!r} (expected {derived!r})")
        return self

    @classmethod
    def create(
        cls,
        *,
        type: str,
        source: str,
        subject_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        actor: Any = None,
        schema_version: int = CURRENT_SCHEMA_VERSION,
        trace_id: str | None = None,
    ) -> Event:
        """A new event happening now. ``actor`` is a ``Principal``, an ``{"id", "role"}`` mapping or
        ``None``; ``trace_id`` defaults to the trace id of the request being served, if any."""
        if trace_id is None:
            trace_id = structlog.contextvars.get_contextvars().get("trace_id")
        return cls(
            type=type,
            source=source,
            subject_id=None if subject_id is None else str(subject_id),
            payload=dict(payload or {}),
            actor=_actor(actor),
            schema_version=schema_version,
            trace_id=trace_id,
        )

    def to_json(self) -> bytes:
        """The envelope as compact JSON bytes, exactly as it is stored in the outbox and published."""
        return self.__pydantic_serializer__.to_json(self)


def _actor(actor: Any) -> Actor | None:
    if actor is None or isinstance(actor, Actor):
        return actor
    if isinstance(actor, Mapping):
        return Actor.model_validate(dict(actor))
    return Actor(id=str(actor.id), role=str(actor.role))
