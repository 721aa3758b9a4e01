"""Outbox → relay → transport → processor → mirror and handlers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from kernel.bus import EventTooLarge
from kernel.bus.processor import handler_name
from kernel.models import utcnow
from sdk import Event, EventHandler, hookimpl
from tests.events.conftest import kernel_running
from tests.events.helpers import Recorder, eventually, mirrored, publish, rows, scalar


async def test_published_events_are_mirrored_and_handled(bus_settings):
    recorder = Recorder("tracker/events/projects/+")
    async with kernel_running(bus_settings(), [("rec", recorder)]) as kernel:
        events = await publish(kernel, 30)
        async with kernel.db.session() as session:
            await kernel.publish(session, Event.create(type="tasks.created", source="tests", payload={"n": 99}))
            await session.commit()
        await eventually(lambda: _equal(mirrored(kernel), 31))
        await eventually(lambda: _done(kernel))
        assert {e.id for e in recorder.seen} == {e.id for e in events}  # tasks.* does not match the pattern
        stored = await rows(kernel, "SELECT id FROM events_mirror WHERE type = 'projects.created'")
        assert len(stored) == 30
        assert await scalar(kernel, "SELECT count(*) FROM event_outbox") == 0  # delivered rows are done


async def _equal(value, expected) -> bool:
    return (await value) == expected


async def _done(kernel) -> bool:
    return await scalar(kernel, "SELECT count(*) FROM event_claims") == 0


async def test_no_event_without_its_commit(bus_settings):
    async with kernel_running(bus_settings()) as kernel:
        async with kernel.db.session() as session:
            await kernel.publish(session, Event.create(type="projects.created", source="t", payload={"n": 1}))
            await session.rollback()
        async with kernel.db.session() as session:
            await kernel.publish(session, Event.create(type="projects.created", source="t", payload={"n": 2}))
            nested = await session.begin_nested()
            await kernel.publish(session, Event.create(type="projects.created", source="t", payload={"n": 3}))
            await nested.rollback()
            await kernel.publish(session, Event.create(type="projects.created", source="t", payload={"n": 4}))
            await session.commit()
        async with kernel.db.session() as session:  # a session closed without commit publishes nothing
            await kernel.publish(session, Event.create(type="projects.created", source="t", payload={"n": 5}))
        await eventually(lambda: _equal(mirrored(kernel), 2))
        await asyncio.sleep(0.2)
        payloads = await rows(kernel, "SELECT payload FROM events_mirror")
        assert sorted(_json(row.payload)["n"] for row in payloads) == [2, 4]
        assert await scalar(kernel, "SELECT count(*) FROM event_outbox") == 0


def _json(value):
    return value if isinstance(value, dict) else json.loads(value)


async def test_state_change_and_event_commit_together(bus_settings):
    """The event is part of the caller's transaction: the same commit writes both or neither."""
    insert = sa.text("INSERT INTO td_things (name) VALUES (:n)")
    async with kernel_running(bus_settings(), serve_bus=False) as kernel:
        async with kernel.db.engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE IF NOT EXISTS td_things (name VARCHAR(20) PRIMARY KEY)"))
        try:
            async with kernel.db.session() as session:
                await (await session.connection()).execute(insert, {"n": "a"})
                await kernel.publish(session, Event.create(type="projects.created", source="t", subject_id="a"))
                await session.commit()
            async with kernel.db.session() as session:
                await (await session.connection()).execute(insert, {"n": "b"})
                await kernel.publish(session, Event.create(type="projects.created", source="t", subject_id="b"))
                with pytest.raises(sa.exc.IntegrityError):  # the state change fails: the event goes too
                    await (await session.connection()).execute(insert, {"n": "a"})
                await session.rollback()
            assert await scalar(kernel, "SELECT count(*) FROM td_things") == 1
            outbox = await rows(kernel, "SELECT body FROM event_outbox")
            assert [json.loads(row.body)["subject_id"] for row in outbox] == ["a"]
        finally:
            async with kernel.db.engine.begin() as conn:
                await conn.execute(sa.text("DROP TABLE td_things"))


async def test_oversized_event_is_refused_at_publish(bus_settings):
    async with kernel_running(bus_settings(bus_max_payload_bytes=2048), serve_bus=False) as kernel:
        async with kernel.db.session() as session:
            with pytest.raises(EventTooLarge) as caught:
                await kernel.publish(
                    session, Event.create(type="projects.created", source="t", payload={"x": "y" * 4000})
                )
        assert caught.value.status == 413


async def test_failing_handler_is_retried_then_dead_lettered(bus_settings):
    recorder = Recorder()
    recorder.fail = {1: 2, 2: -1}  # n=1 succeeds on its third try; n=2 never does
    async with kernel_running(bus_settings(), [("rec", recorder)]) as kernel:
        await publish(kernel, 3)
        await eventually(lambda: _equal(_count(kernel, "dlq_events"), 1))
        await eventually(lambda: _done(kernel))
        assert recorder.calls[0] == 1 and recorder.calls[1] == 3 and recorder.calls[2] == 3
        letter = (await rows(kernel, "SELECT * FROM dlq_events"))[0]
        assert letter.handler == "rec.record" and letter.reason == "handler-failed" and letter.attempts == 3
        assert "RuntimeError: boom 2" in letter.error and "Traceback" in letter.traceback
        assert _json(letter.event)["payload"] == {"n": 2}
        metrics = _metrics(kernel)
        assert metrics['taylordash_events_retried_total{handler="rec.record"}'] == 4.0
        assert metrics['taylordash_events_dead_lettered_total{reason="handler-failed"}'] == 1.0


async def _count(kernel, table: str) -> int:
    return int(await scalar(kernel, f"SELECT count(*) FROM {table}"))


def _metrics(kernel) -> dict[str, float]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    values = {}
    for family in text_string_to_metric_families(generate_latest(kernel.metrics).decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


async def test_a_poison_event_does_not_block_the_ones_behind_it(bus_settings):
    recorder = Recorder()
    recorder.fail = {0: -1}
    settings = bus_settings(bus_handler_attempts=4, bus_handler_backoff_seconds=0.5, bus_handler_backoff_max_seconds=1)
    async with kernel_running(settings, [("rec", recorder)]) as kernel:
        await publish(kernel, 1, subject_id="same")
        await eventually(lambda: _ready(recorder.calls[0] >= 1))
        await publish(kernel, 20, first=1, subject_id="same")  # same subject, behind the poison event
        await eventually(lambda: _ready(len(recorder.seen) == 20), seconds=3)
        assert await _count(kernel, "dlq_events") == 0  # the poison event is still being retried
        await eventually(lambda: _equal(_count(kernel, "dlq_events"), 1), seconds=10)


async def _ready(value) -> bool:
    return bool(value)


async def test_events_of_one_subject_are_handled_in_order(bus_settings):
    recorder = Recorder()
    recorder.delay = {0: 0.2}  # the first is slow; the rest of its subject waits, others do not
    async with kernel_running(bus_settings(), [("rec", recorder)]) as kernel:
        async with kernel.db.session() as session:
            for n in range(10):
                subject = "A" if n % 2 == 0 else "B"
                await kernel.publish(
                    session, Event.create(type="tasks.updated", source="t", subject_id=subject, payload={"n": n})
                )
            await session.commit()
        await eventually(lambda: _ready(len(recorder.seen) == 10))
        order = [e.payload["n"] for e in recorder.seen]
        assert [n for n in order if n % 2 == 0] == [0, 2, 4, 6, 8]
        assert [n for n in order if n % 2] == [1, 3, 5, 7, 9]
        assert order.index(1) < order.index(0)  # subject B did not wait for A's slow event


async def test_duplicate_deliveries_are_no_ops(bus_settings):
    recorder = Recorder()
    async with kernel_running(bus_settings(), [("rec", recorder)]) as kernel:
        event = Event.create(type="projects.updated", source="t", payload={"n": 7})
        for copies in (1, 2, 3):  # as a broker redelivering, or a relay publishing again after a crash
            await kernel.bus.transport.publish(event.topic, event.to_json())
            await eventually(
                lambda copies=copies: _ready(_metrics(kernel)["taylordash_events_delivered_total"] == copies)
            )
        await eventually(lambda: _ready(recorder.seen))
        await asyncio.sleep(0.3)
        assert await mirrored(kernel) == 1 and recorder.calls[7] == 1
        assert _metrics(kernel)["taylordash_events_duplicates_total"] == 2.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json at all", "malformed"),
        (b'{"type": "projects.updated"}', "malformed"),
        (b"x" * 5000, "oversized"),
        ("schema2", "unknown-schema-version"),
        ("wrong-topic", "malformed"),
    ],
)
async def test_unusable_messages_are_dead_lettered_with_a_reason(bus_settings, payload, reason):
    recorder = Recorder()
    async with kernel_running(bus_settings(bus_max_payload_bytes=4096), [("rec", recorder)]) as kernel:
        topic = "tracker/events/projects/updated"
        if payload == "schema2":
            body = json.loads(Event.create(type="projects.updated", source="t").to_json())
            payload = json.dumps({**body, "schema_version": 2, "new_field": 1}).encode()
        elif payload == "wrong-topic":
            payload = Event.create(type="tasks.updated", source="t").to_json()
        await kernel.bus.transport.publish(topic, payload)
        await publish(kernel, 1)  # the processor goes on with the next message
        await eventually(lambda: _ready(recorder.seen))
        letters = await rows(kernel, "SELECT reason, handler, raw, topic, error FROM dlq_events")
        assert len(letters) == 1
        assert letters[0].reason == reason and letters[0].handler is None and letters[0].topic == topic
        assert letters[0].raw and len(letters[0].raw) <= 4096
        assert await mirrored(kernel) == 1


async def test_lost_publishes_are_sent_again(bus_settings):
    """An event the broker acknowledged but no consumer stored (a broker lost it) is published again."""
    settings = bus_settings(bus_redeliver_after_seconds=0.5)
    async with kernel_running(settings) as kernel:
        async with kernel.db.session() as session:
            event = Event.create(type="projects.created", source="t", payload={"n": 1})
            await kernel.publish(session, event)
            await session.commit()
        await eventually(lambda: _equal(mirrored(kernel), 1))
        async with kernel.db.engine.begin() as conn:  # as if the broker had lost the message
            await conn.execute(sa.text("DELETE FROM events_mirror"))
            body = json.dumps(json.loads(event.to_json()))
            await conn.execute(
                sa.text("INSERT INTO event_outbox (id, topic, body, created_at, sent_at) VALUES (:i, :t, :b, :c, :s)"),
                {
                    "i": _uuid_param(kernel, event.id),
                    "t": event.topic,
                    "b": body,
                    "c": utcnow(),
                    "s": utcnow() - timedelta(seconds=5),
                },
            )
        await kernel.bus.relay.housekeeping()
        await eventually(lambda: _equal(mirrored(kernel), 1))
        assert _metrics(kernel)["taylordash_events_redelivered_total"] == 1.0


def _uuid_param(kernel, value):
    return value.hex if kernel.db.is_sqlite else value


async def test_unfinished_handling_is_reclaimed_after_the_lease(bus_settings):
    """A consumer that died mid-way leaves a claimed, unhandled row: it is handled once the claim expires."""
    recorder = Recorder()
    settings = bus_settings(
        bus_handler_attempts=1, bus_handler_timeout_seconds=0.3, bus_handler_backoff_max_seconds=0.1
    )
    async with kernel_running(settings, [("rec", recorder)]) as kernel:
        event = Event.create(type="projects.created", source="t", payload={"n": 5})
        async with kernel.bus.processor.conn.begin() as conn:
            await kernel.bus.processor.store.accept(conn, [(event, True)], owner="dead-instance", lease_seconds=0.2)
        await eventually(lambda: _ready(recorder.seen), seconds=5)
        assert recorder.seen[0].id == event.id
        await eventually(lambda: _done(kernel))


async def test_invalid_handler_pattern_disables_its_plugin(bus_settings):
    class Bad:
        @hookimpl
        def register_event_handlers(self):
            async def handler(event):
                return None

            return [EventHandler("tracker/#/oops", handler, "bad")]

    async with kernel_running(bus_settings(), [("bad", Bad())]) as kernel:
        assert "topic" in kernel.host.records["bad"].error or "#" in kernel.host.records["bad"].error
        assert not [h for h in kernel.bus.processor.handlers if h.name.startswith("bad.")]


def test_handler_names_are_stable():
    async def on_created(event):
        return None

    assert handler_name("projects", EventHandler("tracker/#", on_created, "rollups")) == "projects.rollups"
    assert handler_name("p", EventHandler("tracker/#", on_created)).startswith("p.test_handler_names_are_stable")


async def test_broadcasts_reach_every_instance_including_the_sender(bus_settings):
    shared = bus_settings()
    url = shared.bus_url
    received: dict[str, list] = {"a": [], "b": []}
    first = bus_settings(bus_url=url)
    second = bus_settings(bus_url=url)
    async with kernel_running(first) as a, kernel_running(second) as b:
        for name, kernel in (("a", a), ("b", b)):

            async def handler(topic, payload, name=name):
                received[name].append((topic, payload))

            kernel.bus.on_broadcast("tracker/broadcast/tests/#", handler)
        await a.bus.broadcast("tracker/broadcast/tests/ping", {"sessions": ["s1"]})
        await eventually(lambda: _ready(received["a"] and received["b"]))
        assert received["a"] == received["b"] == [("tracker/broadcast/tests/ping", {"sessions": ["s1"]})]
        with pytest.raises(ValueError):
            await a.bus.broadcast("tracker/events/projects/created", {})


async def test_metrics_follow_the_pipeline_and_the_outbox_waits_for_the_broker(bus_settings):
    async with kernel_running(bus_settings(), [("rec", Recorder())]) as kernel:
        await publish(kernel, 5)
        await eventually(lambda: _equal(mirrored(kernel), 5))
        await eventually(lambda: _done(kernel))
        metrics = _metrics(kernel)
        assert metrics["taylordash_events_published_total"] == 5
        assert metrics["taylordash_events_delivered_total"] == 5
        assert metrics["taylordash_events_mirrored_total"] == 5
        assert metrics['taylordash_events_handled_total{handler="rec.record",outcome="succeeded"}'] == 5
        assert metrics["taylordash_events_transport_connected"] == 1

        await kernel.bus.transport.stop()  # the broker goes away: events wait in the outbox
        await publish(kernel, 3, first=5)
        await asyncio.sleep(0.3)
        await kernel.bus.relay.housekeeping()
        metrics = _metrics(kernel)
        assert metrics["taylordash_events_outbox_pending"] == 3
        assert metrics["taylordash_events_outbox_lag_seconds"] >= 0.3
        assert metrics["taylordash_events_transport_connected"] == 0
        assert await mirrored(kernel) == 5

        await kernel.bus.transport.start()
        await eventually(lambda: _equal(mirrored(kernel), 8))
        await kernel.bus.relay.housekeeping()
        assert _metrics(kernel)["taylordash_events_outbox_lag_seconds"] == 0


async def test_rows_a_crashed_relay_took_go_out_again_first(bus_settings):
    """A relay that died between taking a batch and publishing it: its successor publishes the
    batch again, in order, ahead of newer events, without waiting for the redelivery delay."""
    recorder = Recorder()
    settings = bus_settings(bus_redeliver_after_seconds=3600)
    async with kernel_running(settings, serve_bus=False) as kernel:  # writes the outbox only
        await publish(kernel, 3, subject_id="same")
        async with kernel.db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE event_outbox SET sent_at = :t"), {"t": utcnow()})
        await publish(kernel, 2, first=3, subject_id="same")
    async with kernel_running(settings, [("rec", recorder)]) as kernel:
        await eventually(lambda: _ready(len(recorder.seen) == 5))
        assert [e.payload["n"] for e in recorder.seen] == [0, 1, 2, 3, 4]
