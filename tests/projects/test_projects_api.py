"""Projects over HTTP on SQLite and PostgreSQL: create, read, change, list, delete, bad input."""

from __future__ import annotations

import uuid

from tests.projects.conftest import Api

PROBLEM = "application/problem+json"
MISSING = str(uuid.uuid4())


def names_of(page: dict) -> list[str]:
    return [item["name"] for item in page["items"]]


async def test_create_read_update_delete(api: Api):
    created = await api.project(
        description="to the moon",
        status="active",
        owner="ada",
        labels=["space"],
        metadata={"budget": 12.5, "tags": {"a": [1, 2]}},
        start_date="2030-01-01",
        due_date="2030-06-30",
    )
    pid = created["id"]
    assert created["status"] == "active" and created["version"] == 1 and created["progress"] == 0
    assert created["created_at"].endswith("Z") and created["completed_at"] is None

    got = await api.get(f"/api/v1/projects/{pid}")
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    assert got.json() == created  # the lean read path renders exactly what the write returned

    viewer = await api.get(f"/api/v1/projects/{pid}", role="viewer")
    assert viewer.status_code == 200

    changed = await api.patch(
        f"/api/v1/projects/{pid}",
        json={"name": "Apollo 11", "owner": None, "status": "completed"},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["name"] == "Apollo 11" and body["owner"] is None and body["version"] == 2
    assert body["completed_at"] is not None and changed.headers["etag"] == '"2"'
    assert (await api.get(f"/api/v1/projects/{pid}")).json() == body

    same = await api.patch(f"/api/v1/projects/{pid}", json={"name": "Apollo 11"})
    assert same.json()["version"] == 2  # nothing changed: no new version

    reopened = await api.patch(f"/api/v1/projects/{pid}", json={"status": "active"})
    assert reopened.json()["completed_at"] is None

    deleted = await api.delete(f"/api/v1/projects/{pid}")
    assert deleted.status_code == 204
    gone = await api.get(f"/api/v1/projects/{pid}")
    assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM


async def test_stale_if_match_is_412(api: Api):
    pid = (await api.project())["id"]
    first = await api.patch(f"/api/v1/projects/{pid}", json={"name": "one"}, headers={"If-Match": '"1"'})
    assert first.status_code == 200
    stale = await api.patch(f"/api/v1/projects/{pid}", json={"name": "two"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"] == PROBLEM
    assert stale.json()["current_version"] == 2
    garbage = await api.patch(f"/api/v1/projects/{pid}", json={"name": "two"}, headers={"If-Match": "nope"})
    assert garbage.status_code == 412
    weak = await api.patch(f"/api/v1/projects/{pid}", json={"name": "two"}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    stale_delete = await api.delete(f"/api/v1/projects/{pid}", headers={"If-Match": '"1"'})
    assert stale_delete.status_code == 412
    assert (await api.get(f"/api/v1/projects/{pid}")).json()["name"] == "two"


async def test_bad_input_is_a_named_422(api: Api):
    cases = [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "status": "flying"}, "status"),
        ({"name": "ok", "labels": ["x" * 51]}, "labels"),
        ({"name": "ok", "metadata": {"blob": "x" * 20_000}}, "metadata"),
        ({"name": "ok", "unknown": 1}, "unknown"),
        ({"name": "ok", "start_date": "2030-02-01", "due_date": "2030-01-01"}, None),
    ]
    for body, field in cases:
        response = await api.post("/api/v1/projects", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == PROBLEM
        if field:
            assert any(field in err["loc"] for err in response.json()["errors"]), response.json()
    pid = (await api.project(start_date="2030-02-01"))["id"]
    late = await api.patch(f"/api/v1/projects/{pid}", json={"due_date": "2030-01-01"})
    assert late.status_code == 422 and late.json()["errors"][0]["loc"] == ["due_date"]
    null_name = await api.patch(f"/api/v1/projects/{pid}", json={"name": None})
    assert null_name.status_code == 422
    malformed = await api.post("/api/v1/projects", content=b"{", headers={"content-type": "application/json"})
    assert malformed.status_code == 400


async def test_unknown_ids_and_permissions(api: Api):
    for method, url in [
        ("GET", f"/api/v1/projects/{MISSING}"),
        ("PATCH", f"/api/v1/projects/{MISSING}"),
        ("DELETE", f"/api/v1/projects/{MISSING}"),
        ("GET", f"/api/v1/projects/{MISSING}/components"),
        ("GET", f"/api/v1/projects/{MISSING}/tasks"),
        ("GET", f"/api/v1/projects/{MISSING}/graph"),
        ("GET", f"/api/v1/projects/{MISSING}/export"),
        ("POST", f"/api/v1/projects/{MISSING}/components"),
        ("GET", "/api/v1/projects/not-a-uuid"),
    ]:
        kw = {"json": {"name": "x"}} if method in ("PATCH", "POST") else {}
        response = await api.request(method, url, **kw)
        assert response.status_code == 404, (method, url, response.text)
        assert response.headers["content-type"] == PROBLEM
    assert (await api.post("/api/v1/projects", json={"name": "x"}, role="viewer")).status_code == 403
    assert (await api.client.get("/api/v1/projects")).status_code == 401


async def test_list_filters_sorting_and_cursor_pages(api: Api):
    specs = [
        ("alpha rocket", "active", "ada", ["red"], "2030-03-01"),
        ("bravo boat", "planning", "grace", ["blue"], None),
        ("charlie car", "active", "grace", ["red", "blue"], "2030-01-15"),
        ("delta drone", "archived", None, [], "2030-02-01"),
        ("echo engine", "on_hold", "ada", ["green"], None),
    ]
    for name, status, owner, labels, due in specs:
        await api.project(
            name=name, status=status, owner=owner, labels=labels, due_date=due, description=f"{name} notes"
        )

    async def page(**params) -> dict:
        response = await api.get("/api/v1/projects", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    assert names_of(await page()) == [s[0] for s in specs]
    assert names_of(await page(sort="-created_at")) == [s[0] for s in reversed(specs)]
    assert names_of(await page(status="active")) == ["alpha rocket", "charlie car"]
    assert names_of(await page(status=["active", "archived"])) == ["alpha rocket", "charlie car", "delta drone"]
    assert names_of(await page(status="active,on_hold")) == ["alpha rocket", "charlie car", "echo engine"]
    assert names_of(await page(owner="grace")) == ["bravo boat", "charlie car"]
    assert names_of(await page(label="red")) == ["alpha rocket", "charlie car"]
    assert names_of(await page(due_from="2030-02-01")) == ["alpha rocket", "delta drone"]
    assert names_of(await page(due_to="2030-02-01")) == ["charlie car", "delta drone"]
    assert names_of(await page(sort="due_date")) == [
        "charlie car",
        "delta drone",
        "alpha rocket",
        "bravo boat",
        "echo engine",
    ]
    assert names_of(await page(sort="-name", limit=2)) == ["echo engine", "delta drone"]
    assert names_of(await page(q="rock")) == ["alpha rocket"]
    assert names_of(await page(q="CAR notes")) == ["charlie car"]
    assert names_of(await page(q="engine", status="on_hold")) == ["echo engine"]
    assert names_of(await page(q="zzz")) == []
    assert names_of(await page(q="!!!")) == []

    for sort in ("name", "-name", "due_date", "-due_date", "created_at", "-updated_at", "progress"):
        full = names_of(await page(sort=sort))
        walked, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 2, **({"cursor": cursor} if cursor else {})}
            result = await page(**params)
            walked += names_of(result)
            cursor = result["next_cursor"]
            if cursor is None:
                break
        assert walked == full, sort

    bad = await api.get("/api/v1/projects", params={"cursor": "garbage"})
    assert bad.status_code == 400
    wrong_kind = await api.get(
        "/api/v1/projects", params={"sort": "progress", "cursor": (await page(limit=1))["next_cursor"]}
    )
    assert wrong_kind.status_code == 400
    for params in ({"limit": 0}, {"limit": 501}, {"sort": "nope"}, {"status": "nope"}, {"due_from": "someday"}):
        assert (await api.get("/api/v1/projects", params=params)).status_code == 422, params


async def test_openapi_documents_every_route(api: Api):
    spec = (await api.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/api/v1/projects": {"get", "post"},
        "/api/v1/projects/{project_id}": {"get", "patch", "delete"},
        "/api/v1/projects/{project_id}/components": {"get", "post"},
        "/api/v1/projects/{project_id}/graph": {"get"},
        "/api/v1/projects/{project_id}/export": {"get"},
        "/api/v1/projects/import": {"post"},
        "/api/v1/components/{component_id}": {"get", "patch", "delete"},
        "/api/v1/components/{component_id}/tasks": {"get", "post"},
        "/api/v1/components/{component_id}/dependencies/{depends_on_id}": {"put", "delete"},
        "/api/v1/tasks/{task_id}": {"get", "patch", "delete"},
        "/api/v1/tasks": {"patch"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method]["x-permission"] in ("projects:read", "projects:write")
    assert "ProjectOut" in spec["components"]["schemas"]
    # The import reads its body itself, and still documents both forms it accepts.
    imported = paths["/api/v1/projects/import"]["post"]["requestBody"]["content"]
    assert imported["application/json"]["schema"] == {"$ref": "#/components/schemas/ProjectDocument"}
    assert imported["text/csv"]["schema"]["type"] == "string"
    exported = paths["/api/v1/projects/{project_id}/export"]["get"]["responses"]["200"]["content"]
    assert set(exported) == {"application/json", "text/csv"}
    assert "project" in spec["components"]["schemas"]["ProjectDocument"]["properties"]
