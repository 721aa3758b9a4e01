"""Task attachments over HTTP on both storage backends (file, S3 through moto) and both databases."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from openapi_spec_validator import validate

from builtin_plugins.storage.backends import ObjectNotFound
from kernel.app import Kernel, create_app
from kernel.models import set_plugin_enabled
from tests.conftest import running
from tests.storage.conftest import ADMIN, VIEWER
from tests.support.events import committed_events
from tests.support.plugins import HeaderAuth

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\x00" * 64
PROBLEM = "application/problem+json"


def base(task_id: uuid.UUID) -> str:
    return f"/api/v1/tasks/{task_id}/attachments"


async def outbox_types(app) -> list[str]:
    return [event["type"] for event in await committed_events(app.kernel.db.engine)]


async def test_upload_list_download_delete(make_app, projects):
    task = projects.add_task()
    app = make_app()
    async with running(app) as client:
        created = await client.post(base(task), files={"file": ("../dir/pixel.png", PNG, "text/plain")}, headers=ADMIN)
        assert created.status_code == 201, created.text
        meta = created.json()
        assert meta["filename"] == "pixel.png"
        assert meta["size"] == len(PNG)
        assert meta["content_type"] == "image/png"  # sniffed, the declared type is ignored
        assert meta["sha256"] == hashlib.sha256(PNG).hexdigest()
        assert meta["task_id"] == str(task)
        assert created.headers["location"] == f"{base(task)}/{meta['id']}"

        notes = "naïve notes\n".encode() * 100
        second = await client.post(base(task), files={"file": ("notes.md", notes)}, headers=ADMIN)
        assert second.json()["content_type"] == "text/markdown"
        blob = await client.post(base(task), files={"file": ("blob", b"\x00\x01\x02")}, headers=ADMIN)
        assert blob.json()["content_type"] == "application/octet-stream"

        first_page = await client.get(base(task), params={"limit": 2}, headers=VIEWER)
        assert first_page.status_code == 200
        page = first_page.json()
        assert [i["id"] for i in page["items"]] == [meta["id"], second.json()["id"]]
        rest = await client.get(base(task), params={"limit": 2, "cursor": page["next_cursor"]}, headers=VIEWER)
        assert [i["id"] for i in rest.json()["items"]] == [blob.json()["id"]]
        assert rest.json()["next_cursor"] is None

        download = await client.get(f"{base(task)}/{meta['id']}", headers=VIEWER)
        assert download.status_code == 200
        assert download.content == PNG
        assert download.headers["content-type"] == "image/png"
        assert download.headers["content-length"] == str(len(PNG))
        assert download.headers["etag"] == f'"{meta["sha256"]}"'
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-disposition"].startswith("attachment;")
        text_download = await client.get(f"{base(task)}/{second.json()['id']}", headers=VIEWER)
        assert text_download.content == notes
        assert "filename*=UTF-8''notes.md" in text_download.headers["content-disposition"]

        deleted = await client.delete(f"{base(task)}/{meta['id']}", headers=ADMIN)
        assert deleted.status_code == 204
        gone = await client.get(f"{base(task)}/{meta['id']}", headers=VIEWER)
        assert gone.status_code == 404
        assert gone.json()["type"] == "urn:taylordash:problem:attachment-not-found"
        listed = await client.get(base(task), headers=VIEWER)
        assert len(listed.json()["items"]) == 2
        with pytest.raises(ObjectNotFound):
            await app.kernel.services["storage"].stat(f"attachments/{task}/{meta['id']}")
        types = await outbox_types(app)
    assert types.count("attachments.created") == 3
    assert types.count("attachments.deleted") == 1


async def test_problems_for_bad_requests(make_app, projects):
    task = projects.add_task()
    async with running(make_app(max_upload_bytes=1000)) as client:
        ok = await client.post(base(task), files={"file": ("a.txt", b"a" * 1000)}, headers=ADMIN)
        assert ok.status_code == 201
        cases = {
            "unknown task": (
                await client.post(base(uuid.uuid4()), files={"file": ("a.txt", b"a")}, headers=ADMIN),
                404,
                "task-not-found",
            ),
            "list of unknown task": (await client.get(base(uuid.uuid4()), headers=VIEWER), 404, "task-not-found"),
            "unknown attachment": (
                await client.get(f"{base(task)}/{uuid.uuid4()}", headers=VIEWER),
                404,
                "attachment-not-found",
            ),
            "malformed id": (await client.get(f"{base(task)}/not-a-uuid", headers=VIEWER), 404, "not-found"),
            "missing file part": (
                await client.post(base(task), files={"other": ("a.txt", b"a")}, headers=ADMIN),
                422,
                "validation-error",
            ),
            "plain field only": (
                await client.post(base(task), data={"file": "not a file"}, files={"x": ("x", b"")}, headers=ADMIN),
                422,
                "validation-error",
            ),
            "not multipart": (await client.post(base(task), json={"file": "x"}, headers=ADMIN), 415, None),
            "no boundary": (
                await client.post(base(task), content=b"x", headers={**ADMIN, "content-type": "multipart/form-data"}),
                400,
                "malformed-multipart",
            ),
            "too large": (
                await client.post(base(task), files={"file": ("a.txt", b"a" * 1001)}, headers=ADMIN),
                413,
                "payload-too-large",
            ),
            "declared too large": (
                await client.post(
                    base(task),
                    content=b"x" * 70_000,
                    headers={**ADMIN, "content-type": "multipart/form-data; boundary=b"},
                ),
                413,
                "payload-too-large",
            ),
            "viewer cannot upload": (
                await client.post(base(task), files={"file": ("a.txt", b"a")}, headers=VIEWER),
                403,
                "forbidden",
            ),
            "anonymous": (await client.get(base(task)), 401, "unauthorized"),
            "bad cursor": (
                await client.get(base(task), params={"cursor": "garbage"}, headers=VIEWER),
                400,
                "invalid-cursor",
            ),
        }
        listed = await client.get(base(task), headers=VIEWER)
    for name, (response, status, slug) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == PROBLEM, name
        if slug:
            assert response.json()["type"] == f"urn:taylordash:problem:{slug}", name
    assert cases["missing file part"][0].json()["errors"][0]["loc"] == ["body", "file"]
    assert len(listed.json()["items"]) == 1  # nothing half-stored by the refused uploads


async def test_without_projects_plugin_answers_503(make_app, storage_settings):
    kernel = Kernel(storage_settings())
    try:
        await kernel.prepare_schema(migrate=True)
        await set_plugin_enabled(kernel.db, "projects", False)
    finally:
        await kernel.db.dispose()
    async with running(make_app(with_projects=False)) as client:
        response = await client.get(base(uuid.uuid4()), headers=VIEWER)
    assert response.status_code == 503
    assert response.json()["type"] == "urn:taylordash:problem:projects-unavailable"


async def test_download_link(make_app, projects, storage_kind):
    task = projects.add_task()
    async with running(make_app()) as client:
        created = (await client.post(base(task), files={"file": ("r é.txt", b"hello")}, headers=ADMIN)).json()
        link = await client.get(f"{base(task)}/{created['id']}/link", headers=VIEWER)
    assert link.status_code == 200
    body = link.json()
    if storage_kind == "file":
        assert body == {"url": f"{base(task)}/{created['id']}", "presigned": False, "expires_at": None}
        return
    assert body["presigned"] is True and body["expires_at"]
    async with httpx.AsyncClient() as direct:
        fetched = await direct.get(body["url"])
    assert fetched.status_code == 200
    assert fetched.content == b"hello"
    assert "r%20%C3%A9.txt" in fetched.headers["content-disposition"]


async def test_openapi_documents_attachment_and_monitoring_routes(make_settings, fresh_database_url, storage_url):
    settings = make_settings(database_url=fresh_database_url, storage_url=storage_url)
    only_ours = ("builtin_plugins.storage", "builtin_plugins.monitoring")  # a document of just these two
    app = create_app(settings, [("testauth", HeaderAuth())], builtins=only_ours, configure_logs=False)
    async with running(app) as client:
        spec = (await client.get("/openapi.json")).json()
    validate(spec)
    for path in ("/metrics", "/api/v1/logs", "/api/v1/logs/stream", "/api/v1/logs/stats", "/api/v1/retention/run"):
        assert path in spec["paths"], path
    assert spec["paths"]["/api/v1/retention/{table}"]["put"]["x-permission"] == "retention:write"
    path = spec["paths"]["/api/v1/tasks/{task_id}/attachments"]
    assert path["post"]["x-permission"] == "attachments:write"
    assert {"201", "413", "415", "422"} <= set(path["post"]["responses"])
    body = path["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"
    assert path["get"]["x-permission"] == "attachments:read"
    one = spec["paths"]["/api/v1/tasks/{task_id}/attachments/{attachment_id}"]
    assert set(one) == {"get", "delete"}
