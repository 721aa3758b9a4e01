"""Turning a message from the broker into an event, or into the dead letter saying why it is not one."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from math import isfinite
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from kernel.bus.envelope import SUPPORTED_SCHEMA_VERSIONS, Event
from kernel.bus.store import MALFORMED, OVERSIZED, UNKNOWN_SCHEMA_VERSION, DeadLetter

RAW_KEEP_BYTES = 4096
"""How much of an unusable message its dead letter keeps."""


def decode(topic: str, payload: bytes, max_payload_bytes: int) -> Event | DeadLetter:
    """The event in ``payload`` (received on ``topic``), or the dead letter explaining why there is none:
    oversized, malformed (not an envelope, or published on another topic than its type's), or of a
    schema version this kernel does not read."""
    if len(payload) > max_payload_bytes:
        error = f"{len(payload)} bytes exceed the limit of {max_payload_bytes}"
        return DeadLetter(OVERSIZED, topic, error, raw=payload[:RAW_KEEP_BYTES])
    try:
        event = Event.model_validate_json(payload)
    except ValidationError as exc:
        return _unusable(topic, payload, exc)
    if event.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        return _unknown_version(topic, payload, event.schema_version, event.id)
    if event.topic != topic:
        # Both topics are bounded in the message: the broker delivers topics of any length.
        error = f"published on {topic[:200]!r} but the envelope says {event.topic[:200]!r}"
        return DeadLetter(MALFORMED, topic, error, event_id=event.id, raw=payload[:RAW_KEEP_BYTES])
    unstorable = _unstorable(event, payload)
    if unstorable is not None:
        return DeadLetter(MALFORMED, topic, unstorable, event_id=event.id, raw=payload[:RAW_KEEP_BYTES])
    if "id" not in event.model_fields_set:
        # A generated id would differ on every redelivery, defeating the mirror's deduplication.
        return DeadLetter(MALFORMED, topic, "id: Field required", raw=payload[:RAW_KEEP_BYTES])
    return event


# Markers of what JSON parsers accept but a database cannot keep; the envelope is only walked when the
# raw message holds one, so ordinary events pay a byte search.
_NUL_ESCAPE = b"\\u0000"
_NON_FINITE = re.compile(rb"NaN|Infinity|[eE]\+?[0-9]{3}")


def _unstorable(event: Event, payload: bytes) -> str | None:
    """Why ``event`` cannot be stored (a NUL character, a number that is not finite), or ``None``."""
    if _NUL_ESCAPE in payload and _any_value(event.model_dump(), lambda v: isinstance(v, str) and "\x00" in v):
        return "the envelope holds a NUL character (U+0000), which cannot be stored"
    if _NON_FINITE.search(payload) and _any_value(event.payload, lambda v: isinstance(v, float) and not isfinite(v)):
        return "the payload holds a number that is not finite (NaN, Infinity, or out of range)"
    return None


def _any_value(value: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(value, dict):
        return any(test(k) or _any_value(v, test) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_any_value(v, test) for v in value)
    return test(value)


def _unusable(topic: str, payload: bytes, exc: ValidationError) -> DeadLetter:
    try:
        data: Any = json.loads(payload)
    except (ValueError, RecursionError):  # deeply nested JSON exhausts the stdlib parser's recursion
        data = None
    if isinstance(data, dict):
        version = data.get("schema_version")
        if isinstance(version, int) and version not in SUPPORTED_SCHEMA_VERSIONS:
            return _unknown_version(topic, payload, version, _uuid(data.get("id")))
    error = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)
    )
    return DeadLetter(MALFORMED, topic, error[:2000], raw=payload[:RAW_KEEP_BYTES])


def _unknown_version(topic: str, payload: bytes, version: int, event_id: UUID | None) -> DeadLetter:
    known = ", ".join(str(v) for v in sorted(SUPPORTED_SCHEMA_VERSIONS))
    error = f"schema_version {version} is not supported (this kernel reads {known})"
    return DeadLetter(UNKNOWN_SCHEMA_VERSION, topic, error, event_id=event_id, raw=payload[:RAW_KEEP_BYTES])


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None
