"""What the fuzzers found, pinned down as plain examples on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from kernel.bus.decode import decode
from kernel.bus.envelope import Event
from kernel.bus.store import DeadLetter
from kernel.middleware import database_unavailable
from tests.support.plugins import HeaderAuth

ADMIN = {"x-test-role": "admin"}


async def test_nul_characters_are_refused_not_a_server_error(start_app):
    async with start_app(plugins=[("testauth", HeaderAuth())]) as client:
        body = {"name": "ok", "labels": ["fine", "bad\x00label"], "metadata": {"k\x00": 1}}
        response = await client.post("/api/v1/projects", json=body, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        locations = [e["loc"] for e in response.json()["errors"] if e["type"] == "nul_character"]
        assert locations == [["labels", "1"], ["metadata", "k\x00"]]

        response = await client.get("/api/v1/projects", params={"q": "a\x00b"}, headers=ADMIN)
        assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["q"]

        response = await client.get("/api/v1/plugins/a%00b", headers=ADMIN)
        assert response.status_code == 404, response.text

        # An escaped backslash followed by "u0000" is ordinary text.
        response = await client.post("/api/v1/projects", json={"name": "\\u0000 is fine"}, headers=ADMIN)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "\\u0000 is fine"


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"),
    [("57P03", True), ("57P01", True), ("08006", True), ("53300", True), ("23505", False), ("22P05", False)],
)
def test_database_errors_that_mean_unavailable(sqlstate: str, unavailable: bool):
    assert database_unavailable(_DriverError(sqlstate)) is unavailable


def _envelope(payload: str) -> bytes:
    return ('{"type": "projects.created", "source": "t", "payload": ' + payload + "}").encode()


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (_envelope('{"a": "x\\u0000"}'), "NUL character"),
        (_envelope('{"a": 1e999}'), "not finite"),
        (_envelope('{"a": NaN}'), "not finite"),
        (b"[" * 5000 + b"]" * 5000, "recursion"),
    ],
)
def test_unusable_messages_are_dead_lettered_with_the_reason(raw: bytes, words: str):
    letter = decode("tracker/events/projects/created", raw, 262_144)
    assert isinstance(letter, DeadLetter) and letter.reason == "malformed"
    assert words in letter.error


def test_ordinary_events_still_decode():
    event = Event.create(type="projects.created", source="t", payload={"n": 1e308, "s": "\\u0000 is text"})
    decoded = decode(event.topic, event.model_dump_json().encode(), 262_144)
    assert isinstance(decoded, Event) and decoded.payload == json.loads(event.model_dump_json())["payload"]


def test_a_received_event_without_an_id_is_dead_lettered():
    """The mirror deduplicates redeliveries by event id; an id made up on receipt would differ on every
    delivery, so the message is refused instead."""
    event = Event.create(type="projects.created", source="t", payload={})
    envelope = json.loads(event.model_dump_json())
    del envelope["id"]
    letter = decode(event.topic, json.dumps(envelope).encode(), 262_144)
    assert isinstance(letter, DeadLetter) and letter.reason == "malformed"
    assert letter.error == "id: Field required"


async def test_stream_resume_points_beyond_64_bits_are_refused(start_app):
    async with start_app(plugins=[("testauth", HeaderAuth())]) as client:
        too_big = str(2**63)
        response = await client.get("/api/v1/events/stream", params={"last_event_id": too_big}, headers=ADMIN)
        assert response.status_code == 422, response.text
        response = await client.get("/api/v1/events/stream", headers={**ADMIN, "last-event-id": too_big})
        assert response.status_code == 400, response.text
