"""The event envelope and topic filters."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import structlog
from pydantic import ValidationError

from kernel.bus.topics import TopicError, check_filter, matches, split_shared, topic_for_type
from sdk import Event, Principal


def test_create_fills_the_envelope():
    principal = Principal(id="u1", role="admin", name="Ann")
    event = Event.create(type="projects.created", source="projects", subject_id=42, payload={"a": 1}, actor=principal)
    assert event.topic == "tracker/events/projects/created"
    assert event.id.version == 7
    assert event.actor is not None and event.actor.model_dump() == {"id": "u1", "role": "admin"}
    assert event.subject_id == "42" and event.schema_version == 1 and event.payload == {"a": 1}
    assert event.occurred_at.tzinfo is not None and abs(datetime.now(UTC) - event.occurred_at) < timedelta(seconds=5)
    body = json.loads(event.to_json())
    assert set(body) == {
        "id", "type", "topic", "source", "occurred_at", "actor", "trace_id", "subject_id", "schema_version", "payload",
    }  # fmt: skip
    assert body["occurred_at"].endswith("Z")
    assert Event.model_validate_json(event.to_json()) == event


def test_ids_are_time_ordered_uuid7():
    ids = [Event.create(type="tasks.updated", source="t").id for _ in range(50)]
    assert ids == sorted(ids, key=lambda i: i.bytes)
    assert len(set(ids)) == 50


def test_trace_id_comes_from_the_request_context():
    structlog.contextvars.bind_contextvars(trace_id="abc123")
    try:
        assert Event.create(type="tasks.updated", source="t").trace_id == "abc123"
    finally:
        structlog.contextvars.unbind_contextvars("trace_id")
    assert Event.create(type="tasks.updated", source="t").trace_id is None


def test_actor_mapping_and_none():
    assert Event.create(type="auth.login", source="auth", actor={"id": "u", "role": "viewer"}).actor.role == "viewer"
    assert Event.create(type="auth.login", source="auth", actor=None).actor is None


def test_occurred_at_is_normalised_to_utc():
    local = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    event = Event(type="tasks.updated", source="t", occurred_at=local)
    assert event.occurred_at == local and event.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "Projects.Created", "source": "p"},
        {"type": "projects", "source": "p"},
        {"type": "projects.created", "source": "p", "topic": "tracker/events/tasks/created"},
        {"type": "projects.created", "source": ""},
        {"type": "projects.created", "source": "p", "surprise": 1},
        {"type": "projects.created", "source": "p", "occurred_at": "2024-01-01T00:00:00"},
    ],
)
def test_invalid_envelopes_are_refused(fields):
    with pytest.raises(ValidationError):
        Event(**fields)


def test_topic_for_type_and_filters():
    assert topic_for_type("plugins.violation") == "tracker/events/plugins/violation"
    with pytest.raises(TopicError):
        topic_for_type("bad type")
    assert matches("tracker/events/#", "tracker/events/projects/created")
    assert matches("tracker/events/+/created", "tracker/events/tasks/created")
    assert not matches("tracker/events/+/created", "tracker/events/tasks/updated")
    assert matches("tracker/events/projects/#", "tracker/events/projects")
    assert not matches("#", "$SYS/broker/uptime")
    for bad in ("a/#/b", "a/b#", "a+/b", ""):
        with pytest.raises(TopicError):
            check_filter(bad)
    assert split_shared("$share/g/tracker/events/#") == ("g", "tracker/events/#")
    assert split_shared("tracker/#") == (None, "tracker/#")
    with pytest.raises(TopicError):
        split_shared("$share/g")


def test_sdk_exports_event():
    import sdk

    assert sdk.Event is Event and "Event" in sdk.__all__
    assert isinstance(Event.create(type="system.started", source="kernel").id, uuid.UUID)
