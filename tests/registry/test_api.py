"""The registry's admin API against the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy import text

from kernel.db import Database
from tests.registry.conftest import ADMIN, VIEWER, plugins, upload
from tests.support.events import committed_events

REASON = "reviewed by the security team: the payload only prints a greeting"


async def _events_and_audit(settings) -> tuple[list[dict], list[tuple[str, dict]]]:
    db = Database(settings)
    try:
        events = await committed_events(db.engine, source="plugins")
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT action, details FROM auth_audit_log WHERE action LIKE 'plugins.%' ORDER BY id")
            )
            audit = [(r[0], r[1] if isinstance(r[1], dict) else json.loads(r[1])) for r in rows]
    finally:
        await db.dispose()
    return events, audit


async def test_lifecycle_of_a_clean_plugin(start_app, package, settings):
    async with start_app(plugins()) as client:
        created = await upload(client, package("benign/burndown_chart", "wheel"))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == "burndown-chart" and body["status"] == "scanned" and body["verdict"] == "pass"
        assert body["source"] == "uploaded" and body["manifest"]["type"] == "visualization"
        assert body["scan_report"]["verdict"] == "pass" and body["package"]["size"] > 0
        assert {p["permission"]: p["granted"] for p in body["permissions"]} == {
            "tasks:read": False,
            "projects:read": False,
        }
        enabled = await client.post("/api/v1/plugins/burndown-chart/enable", headers=ADMIN)
        assert enabled.status_code == 200, enabled.text
        assert enabled.json()["status"] == "enabled" and enabled.json()["override"] is None
        assert all(p["granted"] for p in enabled.json()["permissions"])
        again = await client.post("/api/v1/plugins/burndown-chart/enable", headers=ADMIN)
        assert again.status_code == 200 and again.json()["status"] == "enabled"
        disabled = await client.post("/api/v1/plugins/burndown-chart/disable", headers=ADMIN)
        assert disabled.json()["status"] == "disabled"
        assert not any(p["granted"] for p in disabled.json()["permissions"])
        shown = await client.get("/api/v1/plugins/burndown-chart", headers=VIEWER)
        assert shown.json()["status"] == "disabled" and shown.json()["violations_count"] == 0
        removed = await client.delete("/api/v1/plugins/burndown-chart", headers=ADMIN)
        assert removed.status_code == 204
        gone = await client.get("/api/v1/plugins/burndown-chart", headers=VIEWER)
        assert gone.status_code == 404 and gone.json()["type"] == "urn:taylordash:problem:plugin-not-found"
        listed = await client.get("/api/v1/plugins?status=removed", headers=VIEWER)
        assert [i["name"] for i in listed.json()["items"]] == ["burndown-chart"]
        reuploaded = await upload(client, package("benign/burndown_chart", "zip"))
        assert reuploaded.status_code == 201 and reuploaded.json()["status"] == "scanned"
    quarantine = settings.data_dir / "plugins" / "quarantine"
    assert len(list(quarantine.iterdir())) == 1  # the removed upload's package is gone
    events, audit = await _events_and_audit(settings)
    types = [e["type"] for e in events]
    assert types == [
        "plugins.uploaded",
        "plugins.scanned",
        "plugins.enabled",
        "plugins.disabled",
        "plugins.removed",
        "plugins.uploaded",
        "plugins.scanned",
    ]
    assert all(e["topic"] == "tracker/events/plugins/" + e["type"].split(".")[1] for e in events)
    assert events[2]["payload"]["from"] == "scanned" and events[2]["payload"]["to"] == "enabled"
    assert events[2]["actor"] == {"id": "test-admin", "role": "admin"}
    assert [a for a, _ in audit] == types


async def test_failing_verdict_needs_an_audited_override(start_app, package, settings):
    async with start_app(plugins()) as client:
        created = await upload(client, package("malicious/obfuscated_exec", "wheel"))
        assert created.status_code == 201, created.text
        assert created.json()["verdict"] == "fail"
        rules = {f["rule_id"] for f in created.json()["scan_report"]["targets"][0]["findings"]}
        assert "TD101" in rules
        refused = await client.post("/api/v1/plugins/obf-plugin/enable", headers=ADMIN)
        assert refused.status_code == 409
        assert refused.json()["type"] == "urn:taylordash:problem:scan-failed"
        short = await client.post("/api/v1/plugins/obf-plugin/enable", json={"override_reason": "ok"}, headers=ADMIN)
        assert short.status_code == 422
        viewer = await client.post(
            "/api/v1/plugins/obf-plugin/enable", json={"override_reason": REASON}, headers=VIEWER
        )
        assert viewer.status_code == 403
        forced = await client.post("/api/v1/plugins/obf-plugin/enable", json={"override_reason": REASON}, headers=ADMIN)
        assert forced.status_code == 200, forced.text
        assert forced.json()["status"] == "enabled"
        assert forced.json()["override"]["reason"] == REASON and forced.json()["override"]["by"] == "test-admin"
    events, audit = await _events_and_audit(settings)
    enabled = next(e for e in events if e["type"] == "plugins.enabled")
    assert enabled["payload"]["override"] is True and enabled["payload"]["override_reason"] == REASON
    override = dict(audit)["plugins.enabled"]
    assert override["override_reason"] == REASON and override["verdict"] == "fail"


async def test_bad_uploads(start_app, package, make_settings, tmp_path):
    settings = make_settings(plugins={"plugins": {"max_upload_bytes": 4096}})
    async with start_app(plugins(), settings_=settings) as client:
        anonymous = await upload(client, package("benign/velocity_tool"), headers={})
        viewer = await upload(client, package("benign/velocity_tool"), headers=VIEWER)
        not_multipart = await client.post("/api/v1/plugins", json={"file": "x"}, headers=ADMIN)
        no_file = await client.post("/api/v1/plugins", data={"other": "x"}, files={"x": ("a.txt", b"")}, headers=ADMIN)
        malformed = await client.post(
            "/api/v1/plugins",
            content=b"--b\r\nContent-Disposition: form-data; name=file\r\n",
            headers={**ADMIN, "content-type": "multipart/form-data"},
        )
        wrong_kind = await upload(client, ("notes.txt", b"hello"))
        corrupt = await upload(client, ("broken.whl", b"PK\x03\x04 not a zip"))
        traversal = io.BytesIO()
        with zipfile.ZipFile(traversal, "w") as zf:
            zf.writestr("../../evil.py", "x = 1\n")
        hostile = await upload(client, ("evil.zip", traversal.getvalue()))
        no_manifest = await upload(client, package("malicious/no_manifest", "zip"))
        too_big = await upload(client, ("big.whl", b"0" * 10_000))
        first = await upload(client, package("benign/velocity_tool"))
        duplicate = await upload(client, package("benign/velocity_tool", "zip"))
    expectations = [
        (anonymous, 401, "unauthorized"),
        (viewer, 403, "forbidden"),
        (not_multipart, 415, "unsupported-media-type"),
        (no_file, 422, "validation-error"),
        (malformed, 400, "malformed-multipart"),
        (wrong_kind, 415, "unsupported-package"),
        (corrupt, 422, "unusable-package"),
        (hostile, 422, "unusable-package"),
        (no_manifest, 422, "invalid-manifest"),
        (too_big, 413, "payload-too-large"),
        (first, 201, None),
        (duplicate, 409, "already-installed"),
    ]
    for response, status, slug in expectations:
        assert response.status_code == status, (slug, response.text)
        if slug:
            assert response.json()["type"] == f"urn:taylordash:problem:{slug}", response.text
    assert no_file.json()["errors"] == [{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]
    assert "path traversal" in hostile.json()["detail"]
    assert no_manifest.json()["findings"][0]["rule_id"] == "TD201"
    quarantine = settings.data_dir / "plugins" / "quarantine"
    assert len(list(quarantine.iterdir())) == 1  # refused uploads leave nothing behind


async def test_name_of_a_kernel_plugin_is_refused(start_app, tmp_path):
    manifest = (
        'name = "events"\nversion = "1.0.0"\napi_version = "1.0"\nentry = "events"\ntype = "tool"\n'
        'description = "imposter"\nauthor = "x"\n'
    )
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("events/taylordash-plugin.toml", manifest)
        zf.writestr("events/__init__.py", '"""x"""\n')
    async with start_app(plugins()) as client:
        response = await upload(client, ("events.zip", data.getvalue()))
    assert response.status_code == 409 and response.json()["type"] == "urn:taylordash:problem:name-taken"


async def test_configuration_is_validated_against_the_schema(start_app, package):
    async with start_app(plugins()) as client:
        await upload(client, package("benign/burndown_chart", "sdist"))
        await upload(client, package("benign/velocity_tool", "wheel"))
        empty = await client.get("/api/v1/plugins/burndown-chart/config", headers=ADMIN)
        good = await client.put("/api/v1/plugins/burndown-chart/config", json={"days": 30, "title": "x"}, headers=ADMIN)
        bad = await client.put("/api/v1/plugins/burndown-chart/config", json={"days": 0, "colour": 1}, headers=ADMIN)
        not_object = await client.put("/api/v1/plugins/burndown-chart/config", json=[1], headers=ADMIN)
        second = await client.put("/api/v1/plugins/burndown-chart/config", json={"days": 7}, headers=ADMIN)
        shown = await client.get("/api/v1/plugins/burndown-chart/config", headers=ADMIN)
        viewer = await client.get("/api/v1/plugins/burndown-chart/config", headers=VIEWER)
        no_schema = await client.put("/api/v1/plugins/velocity-tool/config", json={"a": 1}, headers=ADMIN)
        builtin = await client.put("/api/v1/plugins/auth/config", json={}, headers=ADMIN)
    assert empty.json() == {"name": "burndown-chart", "config": {}, "revision": 0}
    assert good.status_code == 200 and good.json()["revision"] == 1
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("days",), ()}
    assert not_object.status_code == 422
    assert second.json()["revision"] == 2
    assert shown.json() == {"name": "burndown-chart", "config": {"days": 7}, "revision": 2}
    assert viewer.status_code == 403
    assert no_schema.status_code == 422 and no_schema.json()["type"] == "urn:taylordash:problem:no-config-schema"
    assert builtin.status_code == 409 and builtin.json()["type"] == "urn:taylordash:problem:builtin-plugin"


async def test_rescan_and_transitions(start_app, package, settings):
    async with start_app(plugins()) as client:
        await upload(client, package("benign/kanban_panel", "zip"))
        bad_transition = await client.post("/api/v1/plugins/kanban-panel/disable", headers=ADMIN)
        rescanned = await client.post("/api/v1/plugins/kanban-panel/rescan", headers=ADMIN)
        builtin_rescan = await client.post("/api/v1/plugins/auth/rescan", headers=ADMIN)
        builtin_delete = await client.delete("/api/v1/plugins/auth", headers=ADMIN)
        missing = await client.post("/api/v1/plugins/nope/enable", headers=ADMIN)
    assert bad_transition.status_code == 409
    assert bad_transition.json()["type"] == "urn:taylordash:problem:invalid-transition"
    assert rescanned.status_code == 200 and rescanned.json()["status"] == "scanned"
    assert rescanned.json()["scanned_at"] >= rescanned.json()["created_at"]
    assert builtin_rescan.status_code == 409 and builtin_delete.status_code == 409
    assert missing.status_code == 404
    events, _ = await _events_and_audit(settings)
    assert [e["type"] for e in events] == ["plugins.uploaded", "plugins.scanned", "plugins.scanned"]


async def test_violations_quarantine_a_plugin(start_app, package, make_settings):
    settings = make_settings(plugins={"plugins": {"quarantine_after": 2}})
    async with start_app(plugins(), settings_=settings) as client:
        await upload(client, package("benign/sticky_notes", "wheel"))
        await client.post("/api/v1/plugins/sticky-notes/enable", headers=ADMIN)
        registry = client._transport.app.kernel.services["plugins"]
        await registry.record_violation("sticky-notes", "module", "import of os refused", {"module": "os"})
        after_one = await client.get("/api/v1/plugins/sticky-notes", headers=VIEWER)
        await registry.record_violation("sticky-notes", "cpu", "CPU limit of 2s hit")
        after_two = await client.get("/api/v1/plugins/sticky-notes", headers=VIEWER)
        first_page = await client.get("/api/v1/plugins/sticky-notes/violations?limit=1", headers=VIEWER)
        cursor = first_page.json()["next_cursor"]
        second_page = await client.get(
            f"/api/v1/plugins/sticky-notes/violations?limit=1&cursor={cursor}", headers=VIEWER
        )
        bad_cursor = await client.get("/api/v1/plugins/sticky-notes/violations?cursor=zzz", headers=VIEWER)
        refused = await client.post("/api/v1/plugins/sticky-notes/enable", headers=ADMIN)
        released = await client.post(
            "/api/v1/plugins/sticky-notes/enable", json={"override_reason": REASON}, headers=ADMIN
        )
    assert after_one.json()["status"] == "enabled" and after_one.json()["violations_count"] == 1
    assert after_two.json()["status"] == "quarantined" and after_two.json()["violations_count"] == 2
    assert not any(p["granted"] for p in after_two.json()["permissions"])
    assert [v["kind"] for v in first_page.json()["items"]] == ["cpu"]
    assert [v["kind"] for v in second_page.json()["items"]] == ["module"]
    assert second_page.json()["next_cursor"] is None
    assert second_page.json()["items"][0]["context"] == {"module": "os"}
    assert bad_cursor.status_code == 400
    assert refused.status_code == 409 and "quarantined" in refused.json()["detail"]
    assert released.json()["status"] == "enabled"
    events, _ = await _events_and_audit(settings)
    types = [e["type"] for e in events]
    assert types[-4:] == ["plugins.violation", "plugins.violation", "plugins.quarantined", "plugins.enabled"]


async def test_listing_builtins_and_uploads_with_pages_and_filters(start_app, package):
    async with start_app(plugins()) as client:
        await upload(client, package("benign/kanban_panel", "wheel"))
        await upload(client, package("malicious/native_loader", "sdist"))
        everything = (await client.get("/api/v1/plugins?limit=500", headers=VIEWER)).json()
        names = [i["name"] for i in everything["items"]]
        pages, cursor = [], None
        while True:
            url = "/api/v1/plugins?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = (await client.get(url, headers=VIEWER)).json()
            pages += [i["name"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        uploaded = (await client.get("/api/v1/plugins?source=uploaded", headers=VIEWER)).json()["items"]
        scanned = (await client.get("/api/v1/plugins?status=scanned&q=kanban", headers=VIEWER)).json()["items"]
        builtin = (await client.get("/api/v1/plugins/plugins", headers=VIEWER)).json()
        invalid = await client.get("/api/v1/plugins?status=sleeping", headers=VIEWER)
    assert names == sorted(names) and pages == names
    assert {"auth", "events", "plugins", "kanban-panel", "native-plugin", "testauth"} <= set(names)
    assert {(i["name"], i["verdict"]) for i in uploaded} == {("kanban-panel", "pass"), ("native-plugin", "fail")}
    assert [i["name"] for i in scanned] == ["kanban-panel"]
    assert builtin["source"] == "builtin" and builtin["active"] and "register_routes" in builtin["hooks"]
    assert invalid.status_code == 422


async def test_builtin_enable_disable_is_persisted_for_the_next_start(start_app, settings):
    async with start_app(plugins()) as client:
        disabled = await client.post("/api/v1/plugins/events/disable", headers=ADMIN)
        listed = {i["name"]: i for i in (await client.get("/api/v1/plugins", headers=VIEWER)).json()["items"]}
    assert disabled.json() == {"name": "events", "enabled": False, "restart_required": True}
    assert listed["events"]["enabled"] is False and listed["events"]["active"] is True
    async with start_app(plugins()) as client:
        after_restart = (await client.get("/api/v1/plugins/events", headers=VIEWER)).json()
        enabled = await client.post("/api/v1/plugins/events/enable", headers=ADMIN)
    assert after_restart["active"] is False and after_restart["status"] == "disabled"
    assert enabled.json()["enabled"] is True
    _, audit = await _events_and_audit(settings)
    assert [a for a, _ in audit] == ["plugins.disabled", "plugins.enabled"]
