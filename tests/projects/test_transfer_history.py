"""Export/import (JSON lossless, CSV all or nothing) and time travel from the event log."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from tests.projects.conftest import Api


async def build_project(api: Api) -> dict[str, str]:
    pid = (await api.project(description="exported", labels=["x"], metadata={"k": [1, {"z": None}]}))["id"]
    a = (await api.component(pid, name="A", position={"x": 1, "y": 2}, estimate_minutes=30))["id"]
    b = (await api.component(pid, name="B"))["id"]
    await api.task(a, title="one", progress=30, labels=["ui", "api"], due_date="2030-05-01", estimate_minutes=20)
    await api.task(b, title="two", status="done", assignee="ada", metadata={"n": 1})
    await api.depend(b, a)
    return {"project": pid, "a": a, "b": b}


def comparable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "exported_at"}


async def test_json_export_import_round_trips_exactly(api: Api):
    ids = await build_project(api)
    exported = await api.get(f"/api/v1/projects/{ids['project']}/export")
    assert exported.status_code == 200
    doc = exported.json()
    assert doc["format"] == "taylordash.project/1"
    assert [c["name"] for c in doc["components"]] == ["A", "B"] and len(doc["tasks"]) == 2
    assert doc["project"] == (await api.get(f"/api/v1/projects/{ids['project']}")).json()

    conflict = await api.post("/api/v1/projects/import", json=doc)
    assert conflict.status_code == 409  # restore keeps ids: the project still exists

    copied = await api.post("/api/v1/projects/import", params={"mode": "copy"}, json=doc)
    assert copied.status_code == 201, copied.text
    copy_doc = (await api.get(f"/api/v1/projects/{copied.json()['id']}/export")).json()
    assert copy_doc["project"]["id"] != ids["project"] and len(copy_doc["tasks"]) == 2
    assert copy_doc["components"][1]["depends_on"] == [copy_doc["components"][0]["id"]]

    assert (await api.delete(f"/api/v1/projects/{ids['project']}")).status_code == 204
    restored = await api.post("/api/v1/projects/import", json=doc)
    assert restored.status_code == 201, restored.text
    again = (await api.get(f"/api/v1/projects/{ids['project']}/export")).json()
    assert comparable(again) == comparable(doc)


async def test_json_import_of_early_timestamps_and_unstorable_text(api: Api):
    ids = await build_project(api)
    doc = (await api.get(f"/api/v1/projects/{ids['project']}/export")).json()
    await api.delete(f"/api/v1/projects/{ids['project']}")

    # Timestamps before the year 1000 keep their four-digit year, in storage and in every answer.
    early = {**doc, "project": {**doc["project"], "created_at": "0241-02-21T21:45:10.115330-01:00"}}
    restored = await api.post("/api/v1/projects/import", json=early)
    assert restored.status_code == 201, restored.text
    assert restored.json()["created_at"] == "0241-02-21T22:45:10.115330Z"
    again = (await api.get(f"/api/v1/projects/{ids['project']}/export")).json()
    assert again["project"]["created_at"] == "0241-02-21T22:45:10.115330Z"
    await api.delete(f"/api/v1/projects/{ids['project']}")

    # A moment that UTC puts in the year 0, a NUL character (PostgreSQL stores none), a version past
    # the column's 32 bits: 422, and nothing stored.
    for project, loc, kind in (
        ({"version": 2**31}, ["project", "version"], "less_than_equal"),
        ({"created_at": "0001-01-01T00:30:00+01:00"}, ["project", "created_at"], "value_error"),
        ({"name": "nul\u0000name"}, ["project", "name"], "nul_character"),
    ):
        refused = await api.post("/api/v1/projects/import", json={**doc, "project": {**doc["project"], **project}})
        assert refused.status_code == 422, refused.text
        assert [(e["loc"], e["type"]) for e in refused.json()["errors"]] == [(loc, kind)]
    assert (await api.get("/api/v1/projects")).json()["items"] == []


async def test_json_import_refuses_bad_documents_whole(api: Api):
    ids = await build_project(api)
    doc = (await api.get(f"/api/v1/projects/{ids['project']}/export")).json()
    await api.delete(f"/api/v1/projects/{ids['project']}")

    broken = {**doc, "tasks": [{**doc["tasks"][0], "progress": 500}, doc["tasks"][1]]}
    response = await api.post("/api/v1/projects/import", json=broken)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["tasks", "0", "progress"]

    orphan = {**doc, "tasks": [{**doc["tasks"][0], "component_id": doc["project"]["id"]}]}
    response = await api.post("/api/v1/projects/import", json=orphan)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["tasks", 0, "component_id"]

    a, b = doc["components"]
    looped = {**doc, "components": [{**a, "depends_on": [b["id"]]}, b]}
    response = await api.post("/api/v1/projects/import", json=looped)
    assert response.status_code == 409 and set(response.json()["cycle"]) == {a["id"], b["id"]}

    assert (
        await api.post("/api/v1/projects/import", content=b"{", headers={"content-type": "application/json"})
    ).status_code == 400
    assert (
        await api.post("/api/v1/projects/import", content=b"x", headers={"content-type": "text/plain"})
    ).status_code == 415
    assert (await api.get(f"/api/v1/projects/{doc['project']['id']}")).status_code == 404  # nothing was written


async def test_csv_export_and_import(api: Api):
    ids = await build_project(api)
    exported = await api.get(f"/api/v1/projects/{ids['project']}/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["component"], r["title"], r["labels"]) for r in rows] == [("A", "one", "ui;api"), ("B", "two", "")]

    created = await api.post(
        "/api/v1/projects/import",
        params={"name": "from csv"},
        content=exported.text.encode(),
        headers={"content-type": "text/csv"},
    )
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["name"] == "from csv" and new["component_count"] == 2
    tasks = (await api.get(f"/api/v1/projects/{new['id']}/tasks")).json()["items"]
    assert [(t["title"], t["status"], t["progress"], t["labels"]) for t in tasks] == [
        ("one", "todo", 30, ["ui", "api"]),
        ("two", "done", 100, []),
    ]


async def test_csv_import_reports_every_bad_row_and_imports_nothing(api: Api):
    text = (
        "component,title,status,progress,due_date\n"
        "A,fine,todo,10,2030-01-01\n"
        "A,,todo,10,\n"
        ",no component,todo,5,\n"
        "B,bad status,sleeping,200,someday\n"
    )
    response = await api.post(
        "/api/v1/projects/import", params={"name": "bad"}, content=text, headers={"content-type": "text/csv"}
    )
    assert response.status_code == 422
    problems = {(p["row"], p["column"]) for p in response.json()["rows"]}
    assert problems == {(3, "title"), (4, "component"), (5, "status"), (5, "progress"), (5, "due_date")}
    assert (await api.get("/api/v1/projects")).json()["items"] == []
    missing_column = await api.post(
        "/api/v1/projects/import", params={"name": "x"}, content="title\nx\n", headers={"content-type": "text/csv"}
    )
    assert missing_column.status_code == 422 and missing_column.json()["rows"][0]["column"] == "component"
    unnamed = await api.post(
        "/api/v1/projects/import", content="component,title\nA,x\n", headers={"content-type": "text/csv"}
    )
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["loc"] == ["name"]


async def test_csv_line_endings_and_unreadable_bodies(api: Api):
    async def send(body: bytes, name: str) -> httpx.Response:
        return await api.post(
            "/api/v1/projects/import", params={"name": name}, content=body, headers={"content-type": "text/csv"}
        )

    # Old Mac line endings (a bare CR) are line endings, not a field the parser chokes on.
    mac = await send(b"component,title\rDesign,Sketch\rBuild,Weld\r", "mac")
    assert mac.status_code == 201, mac.text
    tasks = (await api.get(f"/api/v1/projects/{mac.json()['id']}/tasks")).json()["items"]
    assert sorted(t["title"] for t in tasks) == ["Sketch", "Weld"]
    not_utf8 = await send(b"component,title\nA,\xff\n", "latin")
    assert not_utf8.status_code == 400 and not_utf8.json()["type"] == "urn:taylordash:problem:malformed-csv"
    too_long = await send(b'component,title\nA,"' + b"x" * 200_000 + b'"\n', "long")
    assert too_long.status_code == 400 and "field larger than field limit" in too_long.json()["detail"]
    names = {p["name"] for p in (await api.get("/api/v1/projects")).json()["items"]}
    assert names == {"mac"}


async def moment() -> datetime:
    await asyncio.sleep(0.02)
    stamp = datetime.now(UTC)
    await asyncio.sleep(0.02)
    return stamp


async def test_time_travel_rebuilds_past_states(api: Api):
    before_anything = await moment()
    ids = await build_project(api)
    pid = ids["project"]
    built = await moment()
    tasks = (await api.get(f"/api/v1/projects/{pid}/tasks")).json()["items"]
    await api.patch(f"/api/v1/projects/{pid}", json={"name": "renamed"})
    await api.patch(f"/api/v1/tasks/{tasks[0]['id']}", json={"progress": 90})
    changed = await moment()
    await api.delete(f"/api/v1/components/{ids['b']}")
    pruned = await moment()

    async def as_of(when: datetime) -> dict:
        response = await api.get(f"/api/v1/projects/{pid}", params={"as_of": when.isoformat()})
        assert response.status_code == 200, response.text
        return response.json()

    then = await as_of(built)
    assert then["name"] == "Apollo" and then["version"] == 1
    assert then["component_count"] == 2 and then["progress"] == 65  # A at 30, B at 100
    mid = await as_of(changed)
    assert mid["name"] == "renamed" and mid["progress"] == 95
    assert (await as_of(pruned))["component_count"] == 1
    now = (await api.get(f"/api/v1/projects/{pid}")).json()
    assert await as_of(datetime.now(UTC)) == now

    past = (await api.get(f"/api/v1/projects/{pid}/export", params={"as_of": built.isoformat()})).json()
    assert [t["progress"] for t in past["tasks"]] == [30, 100]
    assert past["components"][1]["depends_on"] == [ids["a"]]

    early = await api.get(f"/api/v1/projects/{pid}", params={"as_of": before_anything.isoformat()})
    assert early.status_code == 404
    naive = await api.get(f"/api/v1/projects/{pid}", params={"as_of": "2030-01-01T00:00:00"})
    assert naive.status_code == 422
    await api.delete(f"/api/v1/projects/{pid}")
    assert (await api.get(f"/api/v1/projects/{pid}", params={"as_of": changed.isoformat()})).status_code == 200
    assert (
        await api.get(f"/api/v1/projects/{pid}", params={"as_of": datetime.now(UTC).isoformat()})
    ).status_code == 404

    # Once the oldest events are no longer kept, replaying would be wrong: refused instead.
    async with api.kernel.db.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM event_outbox WHERE topic = 'tracker/events/projects/created'"))
        await conn.execute(sa.text("DELETE FROM events_mirror WHERE type = 'projects.created'"))
    truncated = await api.get(f"/api/v1/projects/{pid}", params={"as_of": changed.isoformat()})
    assert truncated.status_code == 404 and truncated.json()["type"].endswith("history-unavailable")
