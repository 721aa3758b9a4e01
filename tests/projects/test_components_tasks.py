"""Components, tasks, roll-ups, dependencies, the graph and cascade deletes, with their events."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from tests.projects.conftest import Api
from tests.support.events import committed_events

MISSING = str(uuid.uuid4())


async def outbox(api: Api) -> list[dict]:
    """Every event the projects plugin committed so far, oldest first."""
    return await committed_events(api.kernel.db.engine, source="projects")


async def test_tasks_roll_up_into_components_and_projects(api: Api):
    pid = (await api.project())["id"]
    a = (await api.component(pid, name="A"))["id"]
    b = (await api.component(pid, name="B", estimate_minutes=90))["id"]
    t1 = await api.task(a, progress=50, estimate_minutes=60)
    t2 = await api.task(a, progress=0, estimate_minutes=30, assignee="ada")
    await api.task(b, status="done")  # done without a progress means finished: 100
    component = (await api.get(f"/api/v1/components/{a}")).json()
    assert component["task_count"] == 2 and component["progress"] == 25 and component["task_estimate_minutes"] == 90
    project = (await api.get(f"/api/v1/projects/{pid}")).json()
    assert project["component_count"] == 2 and project["progress"] == 63  # mean of 25 and 100, half up

    moved = await api.patch(f"/api/v1/tasks/{t2['id']}", json={"status": "done"}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["progress"] == 100 and moved.json()["completed_at"]
    assert (await api.get(f"/api/v1/components/{a}")).json()["progress"] == 75
    assert (await api.get(f"/api/v1/projects/{pid}")).json()["progress"] == 88
    kept = await api.patch(f"/api/v1/tasks/{t1['id']}", json={"status": "done", "progress": 60})
    assert kept.json()["progress"] == 60  # an explicit progress wins

    stale = await api.patch(f"/api/v1/tasks/{t2['id']}", json={"title": "late"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    for bad in ({"progress": 101}, {"progress": -1}, {"status": "nope"}, {"title": ""}, {"estimate_minutes": -5}):
        response = await api.patch(f"/api/v1/tasks/{t1['id']}", json=bad)
        assert response.status_code == 422, bad
        assert next(iter(bad)) in response.json()["errors"][0]["loc"]

    assert (await api.delete(f"/api/v1/tasks/{t1['id']}")).status_code == 204
    assert (await api.get(f"/api/v1/tasks/{t1['id']}")).status_code == 404
    component = (await api.get(f"/api/v1/components/{a}")).json()
    assert component["task_count"] == 1 and component["progress"] == 100 and component["task_estimate_minutes"] == 30

    got = await api.get(f"/api/v1/tasks/{t2['id']}")
    assert got.status_code == 200 and got.json() == moved.json() and got.headers["etag"] == '"2"'


async def test_component_crud_and_errors(api: Api):
    pid = (await api.project())["id"]
    comp = await api.component(pid, position={"x": 10.5, "y": -3}, labels=["core"], owner="grace")
    assert comp["depends_on"] == [] and comp["position"] == {"x": 10.5, "y": -3.0}
    got = await api.get(f"/api/v1/components/{comp['id']}")
    assert got.json() == comp and got.headers["etag"] == '"1"'
    changed = await api.patch(f"/api/v1/components/{comp['id']}", json={"status": "done", "position": None})
    assert changed.json()["status"] == "done" and changed.json()["position"] is None and changed.json()["completed_at"]
    assert (await api.get(f"/api/v1/components/{comp['id']}")).json() == changed.json()
    for bad in ({"status": "finished"}, {"position": {"x": 1}}, {"progress": 5}, {"name": "n" * 201}):
        response = await api.patch(f"/api/v1/components/{comp['id']}", json=bad)
        assert response.status_code == 422, bad
    stale = await api.delete(f"/api/v1/components/{comp['id']}", headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    for method, url in [
        ("GET", f"/api/v1/components/{MISSING}"),
        ("PATCH", f"/api/v1/components/{MISSING}"),
        ("DELETE", f"/api/v1/components/{MISSING}"),
        ("GET", f"/api/v1/components/{MISSING}/tasks"),
        ("POST", f"/api/v1/components/{MISSING}/tasks"),
        ("GET", f"/api/v1/tasks/{MISSING}"),
        ("PATCH", f"/api/v1/tasks/{MISSING}"),
        ("DELETE", f"/api/v1/tasks/{MISSING}"),
        ("PUT", f"/api/v1/components/{comp['id']}/dependencies/{MISSING}"),
        ("DELETE", f"/api/v1/components/{comp['id']}/dependencies/{MISSING}"),
    ]:
        kw = {"json": {"title": "t"} if method == "POST" else {}} if method in ("PATCH", "POST") else {}
        response = await api.request(method, url, **kw)
        assert response.status_code == 404, (method, url, response.text)
    viewer = await api.post(f"/api/v1/components/{comp['id']}/tasks", json={"title": "x"}, role="viewer")
    assert viewer.status_code == 403


async def test_task_lists_filter_sort_and_page(api: Api):
    pid = (await api.project())["id"]
    a = (await api.component(pid, name="A"))["id"]
    b = (await api.component(pid, name="B"))["id"]
    titles = []
    for i in range(7):
        await api.task(
            a if i % 2 == 0 else b,
            title=f"task {i} {'urgent' if i < 2 else 'later'}",
            status=["todo", "in_progress", "done"][i % 3],
            assignee=["ada", "grace"][i % 2],
            labels=["ui"] if i % 3 == 0 else ["api"],
            progress=i * 10,
            due_date=f"2030-01-0{i + 1}",
        )
        titles.append(f"task {i} {'urgent' if i < 2 else 'later'}")

    async def titles_of(url: str, **params) -> list[str]:
        response = await api.get(url, params=params)
        assert response.status_code == 200, response.text
        return [t["title"] for t in response.json()["items"]]

    in_project = f"/api/v1/projects/{pid}/tasks"
    assert await titles_of(in_project) == titles
    assert await titles_of(f"/api/v1/components/{a}/tasks") == titles[0::2]
    assert await titles_of(in_project, status="done") == [titles[2], titles[5]]
    assert await titles_of(in_project, assignee="grace") == titles[1::2]
    assert await titles_of(in_project, label="ui") == [titles[0], titles[3], titles[6]]
    assert await titles_of(in_project, due_from="2030-01-03", due_to="2030-01-04") == titles[2:4]
    assert await titles_of(in_project, q="urgent") == titles[:2]
    assert await titles_of(f"/api/v1/components/{b}/tasks", q="urg") == [titles[1]]
    assert await titles_of(in_project, sort="-progress", limit=3) == [titles[6], titles[5], titles[4]]
    assert await titles_of(in_project, sort="-title", limit=1) == [titles[6]]
    walked, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "-due_date", **({"cursor": cursor} if cursor else {})}
        page = (await api.get(in_project, params=params)).json()
        walked += [t["title"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert walked == titles[::-1]
    comps = (await api.get(f"/api/v1/projects/{pid}/components", params={"sort": "-name"})).json()
    assert [c["name"] for c in comps["items"]] == ["B", "A"]


async def test_bulk_update_is_all_or_nothing(api: Api):
    pid = (await api.project())["id"]
    cid = (await api.component(pid))["id"]
    t1, t2, t3 = [await api.task(cid, title=f"t{i}") for i in range(3)]
    done = await api.patch(
        "/api/v1/tasks",
        json={"items": [{"id": t1["id"], "progress": 100, "version": 1}, {"id": t2["id"], "assignee": "ada"}]},
    )
    assert done.status_code == 200, done.text
    assert [t["version"] for t in done.json()["items"]] == [2, 2]
    assert (await api.get(f"/api/v1/components/{cid}")).json()["progress"] == 33

    stale = await api.patch(
        "/api/v1/tasks", json={"items": [{"id": t3["id"], "progress": 100}, {"id": t1["id"], "version": 1}]}
    )
    assert stale.status_code == 412
    missing = await api.patch("/api/v1/tasks", json={"items": [{"id": t3["id"], "progress": 100}, {"id": MISSING}]})
    assert missing.status_code == 404 and missing.json()["missing"] == [MISSING]
    assert (await api.get(f"/api/v1/tasks/{t3['id']}")).json()["progress"] == 0  # nothing applied
    duplicate = await api.patch("/api/v1/tasks", json={"items": [{"id": t3["id"]}, {"id": t3["id"]}]})
    assert duplicate.status_code == 422
    assert (await api.patch("/api/v1/tasks", json={"items": []})).status_code == 422


async def test_dependencies_cycles_and_graph(api: Api):
    pid = (await api.project())["id"]
    design = (await api.component(pid, name="design", estimate_minutes=60))["id"]
    build = (await api.component(pid, name="build", estimate_minutes=120))["id"]
    test = (await api.component(pid, name="test"))["id"]
    docs = (await api.component(pid, name="docs", estimate_minutes=10))["id"]
    await api.task(test, estimate_minutes=45)
    await api.task(test, estimate_minutes=15)

    added = await api.depend(build, design)
    assert added.status_code == 201 and added.json()["depends_on_id"] == design
    assert (await api.depend(build, design)).status_code == 200  # idempotent
    assert (await api.depend(test, build)).status_code == 201
    assert (await api.depend(docs, design)).status_code == 201
    assert (await api.get(f"/api/v1/components/{build}")).json()["depends_on"] == [design]

    cycle = await api.depend(design, test)
    assert cycle.status_code == 409, cycle.text
    problem = cycle.json()
    assert problem["type"].endswith("dependency-cycle")
    assert problem["cycle"] == [design, test, build, design]
    assert "design" in problem["detail"] and "build" in problem["detail"]

    self_edge = await api.depend(design, design)
    assert self_edge.status_code == 422 and self_edge.json()["errors"][0]["loc"] == ["depends_on_id"]
    other = (await api.project(name="other"))["id"]
    foreign = (await api.component(other))["id"]
    cross = await api.depend(design, foreign)
    assert cross.status_code == 422 and "same project" in cross.json()["detail"]

    graph = (await api.get(f"/api/v1/projects/{pid}/graph")).json()
    assert {n["id"] for n in graph["nodes"]} == {design, build, test, docs}
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {(build, design), (test, build), (docs, design)}
    order = graph["topological_order"]
    assert order.index(design) < order.index(build) < order.index(test) and order.index(design) < order.index(docs)
    assert graph["levels"] == [[design], [build, docs], [test]]
    assert graph["critical_path"] == {"components": [design, build, test], "total_minutes": 240}
    weights = {n["id"]: n["weight_minutes"] for n in graph["nodes"]}
    assert weights[test] == 60  # no estimate of its own: the tasks' sum

    assert (await api.delete(f"/api/v1/components/{test}/dependencies/{build}")).status_code == 204
    assert (await api.delete(f"/api/v1/components/{test}/dependencies/{build}")).status_code == 404
    assert (await api.depend(design, test)).status_code == 201  # no longer a cycle
    assert (await api.get(f"/api/v1/projects/{pid}/graph", role="viewer")).status_code == 200


async def test_every_change_publishes_one_event(api: Api):
    pid = (await api.project())["id"]
    first = (await api.component(pid, name="first"))["id"]
    second = (await api.component(pid, name="second"))["id"]
    task = await api.task(first, title="t")
    await api.patch(f"/api/v1/tasks/{task['id']}", json={"title": "t2"})
    await api.depend(second, first)
    events = await outbox(api)
    assert [e["type"] for e in events] == [
        "projects.created",
        "components.created",
        "components.created",
        "tasks.created",
        "tasks.updated",
        "components.dependency_added",
    ]
    assert all(e["payload"]["project_id"] == pid and e["source"] == "projects" for e in events)
    assert all(e["actor"] == {"id": "test-admin", "role": "admin"} for e in events)
    updated = events[4]
    assert updated["topic"] == "tracker/events/tasks/updated" and updated["subject_id"] == task["id"]
    assert updated["payload"]["before"]["title"] == "t" and updated["payload"]["after"]["title"] == "t2"
    assert events[3]["payload"]["before"] is None and events[3]["payload"]["after"] == task


async def test_cascade_delete_is_one_transaction_with_one_event_per_object(api: Api):
    pid = (await api.project())["id"]
    keep = (await api.project(name="keep"))["id"]
    kept_component = (await api.component(keep))["id"]
    comps = [(await api.component(pid, name=f"c{i}"))["id"] for i in range(3)]
    tasks = [(await api.task(c, title=f"t{i}"))["id"] for c in comps for i in range(2)]
    await api.depend(comps[1], comps[0])
    before = len(await outbox(api))

    deleted_component = await api.delete(f"/api/v1/components/{comps[2]}")
    assert deleted_component.status_code == 204
    events = (await outbox(api))[before:]
    assert [e["type"] for e in events] == ["tasks.deleted", "tasks.deleted", "components.deleted"]
    assert {e["subject_id"] for e in events[:2]} == set(tasks[4:])
    assert all(e["payload"]["after"] is None and e["payload"]["before"] for e in events)
    assert (await api.get(f"/api/v1/projects/{pid}")).json()["component_count"] == 2

    before = len(await outbox(api))
    assert (await api.delete(f"/api/v1/projects/{pid}")).status_code == 204
    events = (await outbox(api))[before:]
    kinds = [e["type"] for e in events]
    assert kinds == ["tasks.deleted"] * 4 + ["components.deleted"] * 2 + ["projects.deleted"]
    assert {e["subject_id"] for e in events} == {*tasks[:4], *comps[:2], pid}
    assert len({e["id"] for e in events}) == len(events)
    for url in (f"/api/v1/tasks/{tasks[0]}", f"/api/v1/components/{comps[0]}", f"/api/v1/projects/{pid}"):
        assert (await api.get(url)).status_code == 404
    async with api.kernel.db.engine.connect() as conn:
        left = await conn.execute(sa.text("SELECT count(*) FROM component_dependencies"))
        assert left.scalar_one() == 0
    assert (await api.get(f"/api/v1/components/{kept_component}")).status_code == 200


async def test_a_failed_write_leaves_no_event(api: Api):
    pid = (await api.project())["id"]
    comp = (await api.component(pid))["id"]
    before = len(await outbox(api))
    assert (await api.depend(comp, comp)).status_code == 422
    assert (
        await api.patch(f"/api/v1/components/{comp}", json={"name": "x"}, headers={"If-Match": '"9"'})
    ).status_code == 412
    assert len(await outbox(api)) == before
