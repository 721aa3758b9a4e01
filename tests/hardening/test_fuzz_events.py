"""Hypothesis-generated messages arriving from the broker, hostile or merely odd: the processor never
crashes or stalls on one, and every message ends up either mirrored (an event) or dead-lettered with
the reason it is unusable. ``decode`` is fuzzed on its own with many examples; the whole consumer
path (``Processor.receive``, the transport's entry point) runs on PostgreSQL, which refuses more than
SQLite (NUL characters, non-finite numbers)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernel.app import Kernel
from kernel.bus.decode import decode
from kernel.bus.envelope import Event
from kernel.bus.store import DeadLetter
from tests.hardening.support import PrivatePostgres, hardening_settings

MAX_PAYLOAD = 262_144
RECEIVE_SECONDS = 30.0

# Text with what databases and parsers trip on: NUL, controls, surrogate pairs, RTL marks, long runs.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(["\x00", "\x01", "\n", "\\", '"', "\u202e", "\ufeff", "\U0001f600", "é"])),
    st.just("x" * 5000),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=20,
)
event_types = st.one_of(
    st.sampled_from(["projects.created", "tasks.updated", "plugins.violation", "system.notice"]),
    st.from_regex(r"\A[a-z]{1,8}\.[a-z_]{1,8}\Z"),
    hostile_text,
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """An envelope close to valid, with some fields replaced by anything at all."""
    envelope: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": draw(event_types),
        "source": draw(st.one_of(st.just("fuzz"), hostile_text)),
        "occurred_at": draw(st.one_of(st.just("2026-01-01T00:00:00Z"), hostile_text, st.integers())),
        "actor": draw(st.one_of(st.none(), st.just({"id": "u1", "role": "admin"}), json_values)),
        "trace_id": draw(st.one_of(st.none(), hostile_text)),
        "subject_id": draw(st.one_of(st.none(), hostile_text)),
        "schema_version": draw(st.one_of(st.just(1), st.integers(min_value=-3, max_value=2**40))),
        "payload": draw(st.one_of(st.dictionaries(hostile_text, json_values, max_size=5), json_values)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=2, unique=True)):
        del envelope[key]
    if draw(st.booleans()):
        envelope[draw(hostile_text)] = draw(json_values)  # an unknown field
    return envelope


def _topic_for(envelope: dict[str, Any]) -> str:
    kind = envelope.get("type")
    if isinstance(kind, str) and "." in kind:
        return "tracker/events/" + kind.replace(".", "/", 1)
    return "tracker/events/projects/created"


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    """``(topic, payload)`` as the transport hands them over."""
    choice = draw(st.integers(min_value=0, max_value=5))
    if choice == 0:
        return draw(hostile_text), draw(st.binary(max_size=300))
    if choice == 1:
        return "tracker/events/projects/created", json.dumps(draw(json_values)).encode()
    if choice == 2:  # an oversized message
        return "tracker/events/projects/created", b'{"payload": "' + b"x" * (MAX_PAYLOAD + 10) + b'"}'
    if choice == 3:  # deeply nested JSON
        depth = draw(st.integers(min_value=100, max_value=5000))
        return "tracker/events/projects/created", b"[" * depth + b"]" * depth
    envelope = draw(envelopes())
    topic = _topic_for(envelope) if choice == 4 else draw(st.one_of(st.just(_topic_for(envelope)), hostile_text))
    raw = json.dumps(envelope).encode()  # Infinity and NaN literals included: parsers accept them
    if draw(st.booleans()):
        raw = raw.replace(b"1e", b"1e9999", 1)  # a number no float holds
    return topic, raw


@given(message=messages())
@settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_decode_never_raises_and_explains_every_refusal(message: tuple[str, bytes]) -> None:
    topic, payload = message
    result = decode(topic, payload, MAX_PAYLOAD)
    assert isinstance(result, Event | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.reason in {"malformed", "oversized", "unknown-schema-version"}
        assert result.error and len(result.error) <= 2000
        assert result.raw is not None and len(result.raw) <= 4096
    else:
        assert result.topic == topic
        json.loads(result.model_dump_json())  # it can be written back out as JSON


@pytest.fixture
def fuzz_kernel(private_pg: PrivatePostgres, tmp_path: Path) -> Iterator[tuple[Kernel, asyncio.AbstractEventLoop]]:
    url = private_pg.create_database(f"fuzz_{uuid.uuid4().hex[:8]}")
    kernel = Kernel(hardening_settings(data_dir=tmp_path / "data", database_url=url, bus_url="memory://"))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(kernel.start(migrate=True))
    yield kernel, loop
    loop.run_until_complete(kernel.stop())
    loop.close()


async def _stored(kernel: Kernel, sql: str, **params: Any) -> int:
    async with kernel.db.engine.connect() as conn:
        return int(await conn.scalar(sa.text(sql), params) or 0)


def test_processor_stores_or_dead_letters_every_message(fuzz_kernel: tuple[Kernel, asyncio.AbstractEventLoop]):
    kernel, loop = fuzz_kernel
    processor = kernel.bus.processor

    async def deliver(topic: str, payload: bytes) -> None:
        letters_before = await _stored(kernel, "SELECT count(*) FROM dlq_events")
        try:
            await asyncio.wait_for(processor.receive(topic, payload), RECEIVE_SECONDS)
        except TimeoutError:
            raise AssertionError(f"the processor is stuck on {payload[:200]!r} (topic {topic!r})") from None
        expected = decode(topic, payload, processor.options.max_payload_bytes)
        if isinstance(expected, Event):
            mirrored = await _stored(kernel, "SELECT count(*) FROM events_mirror WHERE id = :id", id=expected.id)
            letters = await _stored(kernel, "SELECT count(*) FROM dlq_events")
            assert mirrored == 1 or letters == letters_before + 1, f"{payload[:200]!r} neither mirrored nor dead"
        else:
            reasons = await _stored(
                kernel,
                "SELECT count(*) FROM dlq_events WHERE reason = :reason AND error <> ''",
                reason=expected.reason,
            )
            assert await _stored(kernel, "SELECT count(*) FROM dlq_events") == letters_before + 1
            assert reasons >= 1

    @given(message=messages())
    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(message: tuple[str, bytes]) -> None:
        loop.run_until_complete(deliver(*message))

    check()
