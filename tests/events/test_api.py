"""The events API: listing, filters, cursors, permissions, the dead-letter queue; both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sdk import Event
from tests.events.helpers import ADMIN, VIEWER, Recorder, eventually, mirrored, scalar


@pytest.fixture
def api_settings(bus_settings, database_for):
    return bus_settings(database_url=database_for("with-auth"), bus_handler_attempts=1)


async def _publish(kernel, *events: Event) -> None:
    async with kernel.db.session() as session:
        for event in events:
            await kernel.publish(session, event)
        await session.commit()


def _kernel(client):
    return client._transport.app.kernel  # the KernelApp behind the in-process transport


async def _wait_mirrored(kernel, count: int) -> None:
    async def enough() -> bool:
        return await mirrored(kernel) >= count

    await eventually(enough)


async def test_list_filters_and_pages(app_client, api_settings):
    async with app_client(api_settings) as client:
        kernel = _kernel(client)
        ann = {"id": "ann", "role": "admin"}
        events = [
            Event.create(type="projects.created", source="t", subject_id="p1", actor=ann, payload={"n": 0}),
            Event.create(type="projects.updated", source="t", subject_id="p1", actor=ann, payload={"n": 1}),
            Event.create(type="tasks.created", source="t", subject_id="t1", payload={"n": 2}),
            Event.create(type="tasks.updated", source="t", subject_id="t1", payload={"n": 3}),
            Event.create(type="components.created", source="t", subject_id="c_1", payload={"n": 4}),
        ]
        await _publish(kernel, *events)
        await _wait_mirrored(kernel, 5)

        first = (await client.get("/api/v1/events?limit=2", headers=VIEWER)).json()
        assert [e["payload"]["n"] for e in first["items"]] == [4, 3]  # newest first
        second = (await client.get(f"/api/v1/events?limit=2&cursor={first['next_cursor']}", headers=VIEWER)).json()
        third = (await client.get(f"/api/v1/events?limit=2&cursor={second['next_cursor']}", headers=VIEWER)).json()
        assert [e["payload"]["n"] for e in second["items"] + third["items"]] == [2, 1, 0]
        assert third["next_cursor"] is None

        async def ns(query: str) -> list[int]:
            response = await client.get(f"/api/v1/events?{query}", headers=VIEWER)
            assert response.status_code == 200, response.text
            return sorted(e["payload"]["n"] for e in response.json()["items"])

        assert await ns("type=tasks.updated") == [3]
        assert await ns("subject_id=p1") == [0, 1]
        assert await ns("actor_id=ann") == [0, 1]
        assert await ns("topic=tracker/events/projects/%23") == [0, 1]
        assert await ns("topic=tracker/events/%2B/created") == [0, 2, 4]
        assert await ns("topic=tracker/events/components/created") == [4]
        assert await ns("topic=%2B/events/%2B/%23&limit=1") == [4]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        assert await ns(f"until={future}&since=2020-01-01T00:00:00Z") == [0, 1, 2, 3, 4]
        assert await ns(f"since={future}") == []

        item = first["items"][0]
        assert item["topic"] == "tracker/events/components/created" and item["seq"] > 0 and item["handled"] is True
        assert item["occurred_at"].endswith("Z") and item["mirrored_at"].endswith("Z")

        for query, status, slug in (
            ("cursor=not-a-cursor", 400, "invalid-cursor"),
            ("limit=501", 422, "validation-error"),
            ("topic=a/%23/b", 422, "validation-error"),
            ("since=yesterday", 422, "validation-error"),
        ):
            response = await client.get(f"/api/v1/events?{query}", headers=VIEWER)
            assert response.status_code == status and response.json()["type"].endswith(slug), (query, response.text)


async def test_get_one_event_and_auth_events_are_for_admins(app_client, api_settings):
    async with app_client(api_settings) as client:
        kernel = _kernel(client)
        login = Event.create(type="auth.login_failed", source="auth", subject_id="bob", payload={"ip": "10.0.0.1"})
        task = Event.create(type="tasks.created", source="t", subject_id="t1")
        await _publish(kernel, login, task)
        await _wait_mirrored(kernel, 2)
        shown = await client.get(f"/api/v1/events/{task.id}", headers=VIEWER)
        assert shown.status_code == 200 and shown.json()["id"] == str(task.id)
        assert (await client.get(f"/api/v1/events/{login.id}", headers=ADMIN)).status_code == 200
        hidden = await client.get(f"/api/v1/events/{login.id}", headers=VIEWER)
        assert hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"
        ids = lambda page: {e["id"] for e in page.json()["items"]}  # noqa: E731
        assert ids(await client.get("/api/v1/events", headers=ADMIN)) == {str(login.id), str(task.id)}
        assert ids(await client.get("/api/v1/events", headers=VIEWER)) == {str(task.id)}
        assert (await client.get(f"/api/v1/events/{uuid.uuid4()}", headers=ADMIN)).status_code == 404
        assert (await client.get("/api/v1/events")).status_code == 401
        assert (await client.get("/api/v1/events/not-a-uuid", headers=ADMIN)).status_code == 404


async def test_dead_letter_queue_list_replay_discard(app_client, api_settings):
    recorder = Recorder("tracker/events/tasks/#", name="flaky")
    recorder.fail = {1: -1, 2: -1}
    async with app_client(api_settings, [("rec", recorder)]) as client:
        kernel = _kernel(client)
        await _publish(
            kernel,
            Event.create(type="tasks.created", source="t", subject_id="a", payload={"n": 1}),
            Event.create(type="tasks.created", source="t", subject_id="b", payload={"n": 2}),
        )
        await kernel.bus.transport.publish("tracker/events/tasks/created", b"{broken")

        async def three_letters() -> bool:
            return await scalar(kernel, "SELECT count(*) FROM dlq_events") == 3

        await eventually(three_letters)
        listing = await client.get("/api/v1/dlq", headers=VIEWER)
        assert listing.status_code == 200
        letters = listing.json()["items"]
        assert {(x["reason"], x["handler"]) for x in letters} == {
            ("handler-failed", "rec.flaky"), ("malformed", None),
        }  # fmt: skip
        by_handler = (await client.get("/api/v1/dlq?handler=rec.flaky", headers=VIEWER)).json()["items"]
        assert len(by_handler) == 2 and all(x["attempts"] == 1 and "boom" in x["error"] for x in by_handler)
        assert len((await client.get("/api/v1/dlq?reason=malformed", headers=VIEWER)).json()["items"]) == 1
        assert len((await client.get("/api/v1/dlq?limit=1", headers=VIEWER)).json()["items"]) == 1
        first, _ = sorted(by_handler, key=lambda x: x["event"]["payload"]["n"])
        one = await client.get(f"/api/v1/dlq/{first['id']}", headers=VIEWER)
        assert one.status_code == 200 and one.json()["traceback"].startswith("Traceback")

        assert (await client.post(f"/api/v1/dlq/{first['id']}/replay", headers=VIEWER)).status_code == 403
        again = await client.post(f"/api/v1/dlq/{first['id']}/replay", headers=ADMIN)
        assert again.status_code == 200 and again.json()["status"] == "failed" and "boom 1" in again.json()["error"]
        assert (await client.get(f"/api/v1/dlq/{first['id']}", headers=ADMIN)).json()["attempts"] == 2

        recorder.fail = {}  # the handler is fixed
        replayed = await client.post(f"/api/v1/dlq/{first['id']}/replay", headers=ADMIN)
        assert replayed.json() == {"id": first["id"], "status": "replayed", "error": None}
        assert (await client.get(f"/api/v1/dlq/{first['id']}", headers=ADMIN)).status_code == 404
        assert [e.payload["n"] for e in recorder.seen] == [1]

        bulk = await client.post("/api/v1/dlq/replay", json={"handler": "rec.flaky"}, headers=ADMIN)
        assert bulk.status_code == 200 and bulk.json()["replayed"] == 1 and bulk.json()["failed"] == 0
        malformed = await client.post("/api/v1/dlq/replay", json={"reason": "malformed"}, headers=ADMIN)
        assert malformed.json()["failed"] == 1 and "malformed" in malformed.json()["items"][0]["error"]

        left = (await client.get("/api/v1/dlq", headers=ADMIN)).json()["items"]
        assert len(left) == 1
        assert (await client.delete(f"/api/v1/dlq/{left[0]['id']}", headers=VIEWER)).status_code == 403
        assert (await client.delete(f"/api/v1/dlq/{left[0]['id']}", headers=ADMIN)).status_code == 204
        assert (await client.delete(f"/api/v1/dlq/{left[0]['id']}", headers=ADMIN)).status_code == 404
        assert (await client.get("/api/v1/dlq", headers=ADMIN)).json()["items"] == []

        async def audited() -> list:
            response = await client.get("/api/v1/events?topic=tracker/events/system/%2B", headers=ADMIN)
            return response.json()["items"]

        async def three_audit_events() -> bool:
            return len(await audited()) == 3

        await eventually(three_audit_events)
        types = sorted(e["type"] for e in await audited())
        assert types == ["system.dlq_discarded", "system.dlq_replayed", "system.dlq_replayed"]
        assert all(e["actor"] == {"id": "test-admin", "role": "admin"} for e in await audited())


async def test_replay_of_an_unregistered_handler_is_a_conflict(app_client, api_settings):
    async with app_client(api_settings) as client:
        kernel = _kernel(client)
        from kernel.bus.store import HANDLER_FAILED, DeadLetter

        event = Event.create(type="tasks.created", source="t")
        letter = DeadLetter(HANDLER_FAILED, event.topic, "boom", event, event.id, "gone.handler", "tb", 5)
        async with kernel.bus.processor.conn.begin() as conn:
            await kernel.bus.processor.store.dead_letter(conn, [letter])
        entry = (await client.get("/api/v1/dlq", headers=ADMIN)).json()["items"][0]
        response = await client.post(f"/api/v1/dlq/{entry['id']}/replay", headers=ADMIN)
        assert response.status_code == 409 and response.json()["type"].endswith("handler-not-registered")


async def test_openapi_documents_the_events_routes(app_client, api_settings):
    async with app_client(api_settings) as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert paths["/api/v1/events"]["get"]["x-permission"] == "events:read"
    assert {p["name"] for p in paths["/api/v1/events"]["get"]["parameters"]} >= {
        "topic", "type", "subject_id", "actor_id", "since", "until", "limit", "cursor",
    }  # fmt: skip
    assert "text/event-stream" in paths["/api/v1/events/stream"]["get"]["responses"]["200"]["content"]
    assert paths["/api/v1/events/{event_id}"]["get"]["x-permission"] == "events:read"
    assert paths["/api/v1/dlq"]["get"]["x-permission"] == "events:read"
    assert paths["/api/v1/dlq/{letter_id}/replay"]["post"]["x-permission"] == "events:admin"
    assert paths["/api/v1/dlq/replay"]["post"]["x-permission"] == "events:admin"
    assert paths["/api/v1/dlq/{letter_id}"]["delete"]["x-permission"] == "events:admin"
