"""A sandboxed plugin inside a running kernel: installed and enabled through the registry, its routes
and event handlers served like any plugin's (its panel files only by the dashboard, framed), its
worker restarted after a crash or a hang,
stopped when disabled or quarantined — and the kernel answering throughout."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import sqlalchemy as sa

from kernel.app import create_app
from tests.conftest import running
from tests.sandbox.conftest import ADMIN, PROBE, VIEWER, eventually, install, plugins, sandbox_settings, violations
from tests.sandbox.conftest import worker as worker_of


async def test_routes_events_panels_and_storage(make_settings, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    panel_page = "/panels/probe/probe/index.html"
    async with running(app) as client:
        enabled = await install(client, PROBE, tmp_path)
        assert enabled["status"] == "enabled"
        echo = await client.get("/api/v1/x/probe/echo", params={"a": "1"}, headers=VIEWER)
        assert echo.status_code == 200, echo.text
        assert echo.json() == {"method": "GET", "query": {"a": "1"}, "body": None, "role": "viewer"}
        posted = await client.post("/api/v1/x/probe/echo", json={"n": [1, 2]}, headers=ADMIN)
        assert posted.json()["body"] == {"n": [1, 2]}
        assert (await client.get("/api/v1/x/probe/echo")).status_code == 401
        assert (await client.post("/api/v1/x/probe/echo", json={}, headers=VIEWER)).status_code == 403

        stored = await client.put("/api/v1/x/probe/kv/colour", json={"value": "teal"}, headers=ADMIN)
        assert stored.status_code == 201 and stored.json() == {"stored": "colour"}
        read = await client.get("/api/v1/x/probe/kv/colour", headers=VIEWER)
        assert read.json() == {"key": "colour", "value": {"value": "teal"}}

        spec = (await client.get("/openapi.json")).json()
        assert "/api/v1/x/probe/kv/{key}" in spec["paths"]

        # The panel's page comes from the dashboard, under a policy that keeps it in its sandbox;
        # no file of the package is served from the host's origin any other way.
        page = await client.get(panel_page, headers=VIEWER)
        assert page.status_code == 200 and "probe panel" in page.text
        assert "sandbox allow-scripts" in page.headers["content-security-policy"]
        for elsewhere in ("/api/v1/x/probe/static/index.html", "/api/v1/x/probe/panels/probe/index.html"):
            assert (await client.get(elsewhere, headers=VIEWER)).status_code == 404

        project = await client.post("/api/v1/projects", json={"name": "Sandboxed"}, headers=ADMIN)
        assert project.status_code == 201, project.text

        async def seen() -> bool:
            body = (await client.get("/api/v1/x/probe/seen", headers=VIEWER)).json()
            return "projects.created" in body["events"]

        await eventually(seen)

        async def published() -> list:
            page = await client.get("/api/v1/events", params={"type": "probe.seen"}, headers=ADMIN)
            return page.json()["items"]

        events = await eventually(published)
        assert events[0]["source"] == "probe" and events[0]["payload"] == {"type": "projects.created"}
        assert events[0]["subject_id"] == project.json()["id"]

        async def tallies() -> dict:
            async with app.kernel.db.engine.connect() as conn:
                rows = await conn.execute(sa.text("SELECT permission, calls, refused FROM plugin_api_access"))
                found = {r.permission: (r.calls, r.refused) for r in rows}
            return found if found.get("storage:kv", (0, 0))[0] >= 4 else {}

        counted = await eventually(tallies)
        assert counted["storage:kv"][1] == 0
        assert counted["events:publish:tracker/events/probe/seen"][0] >= 1

        disabled = await client.post("/api/v1/plugins/probe/disable", headers=ADMIN)
        assert disabled.status_code == 200
        assert (await client.get("/api/v1/x/probe/echo", headers=VIEWER)).status_code == 404
        assert await worker_of(client, "probe") is None
        assert (await client.get(panel_page, headers=VIEWER)).status_code == 404


async def test_enabled_plugins_start_with_the_kernel(make_settings, tmp_path: Path):
    settings = make_settings(plugins=sandbox_settings())
    async with running(create_app(settings, plugins(), configure_logs=False)) as client:
        await install(client, PROBE, tmp_path, kind="wheel")
    app = create_app(settings, plugins(), configure_logs=False)
    async with running(app) as client:
        echo = await client.get("/api/v1/x/probe/echo", headers=VIEWER)
        assert echo.status_code == 200, echo.text
        record = app.kernel.host.records["probe"]
        assert record.sandboxed and record.active and "register_routes" in record.hooks
        pid = (await worker_of(client, "probe"))["pid"]
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_killed_worker_is_restarted_and_the_kernel_keeps_serving(make_settings, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, PROBE, tmp_path)
        first = await worker_of(client, "probe")
        os.kill(first["pid"], signal.SIGKILL)
        assert (await client.get("/health/live")).status_code == 200

        async def restarted() -> dict | None:
            found = await worker_of(client, "probe")
            return found if found and found["running"] and found["pid"] != first["pid"] else None

        second = await eventually(restarted)
        assert second["restarts"] >= 1
        assert (await client.get("/api/v1/x/probe/echo", headers=VIEWER)).status_code == 200
        crashes = [v for v in await violations(client, "probe") if v["kind"] == "crash"]
        assert crashes and crashes[0]["detail"].startswith("worker exited unexpectedly")


async def test_a_hanging_call_times_out_and_the_worker_comes_back(make_settings, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, PROBE, tmp_path)
        before = (await worker_of(client, "probe"))["pid"]
        slow = await client.get("/api/v1/x/probe/slow", headers=VIEWER)
        assert slow.status_code in (502, 504), slow.text
        assert slow.headers["content-type"].startswith("application/problem+json")
        assert slow.json()["type"].endswith(("plugin-timeout", "plugin-failed"))
        kinds = {v["kind"] for v in await violations(client, "probe")}
        assert kinds & {"cpu", "timeout"}

        async def back() -> bool:
            found = await worker_of(client, "probe")
            return bool(found and found["running"])

        await eventually(back)
        after = await client.get("/api/v1/x/probe/echo", headers=VIEWER)
        assert after.status_code == 200
        if "timeout" in kinds:
            assert (await worker_of(client, "probe"))["pid"] != before


async def test_repeated_violations_quarantine_the_plugin(make_settings, corpus_plugin: Path, tmp_path: Path):
    settings = make_settings(plugins=sandbox_settings(plugins={"quarantine_after": 3}))
    app = create_app(settings, plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, corpus_plugin, tmp_path, override="the escape corpus is meant to fail the scan")
        for _ in range(2):
            refused = await client.get("/api/v1/x/probe/escape/import_os", headers=VIEWER)
            assert refused.status_code == 502 and refused.json()["outcome"] == "blocked"
        assert (await client.get("/api/v1/plugins/probe", headers=ADMIN)).json()["status"] == "enabled"
        await client.get("/api/v1/x/probe/escape/import_os", headers=VIEWER)

        async def quarantined() -> bool:
            status = (await client.get("/api/v1/plugins/probe", headers=ADMIN)).json()["status"]
            return status == "quarantined" and await worker_of(client, "probe") is None

        await eventually(quarantined)
        assert (await client.get("/api/v1/x/probe/echo", headers=VIEWER)).status_code == 404
        stored = await violations(client, "probe")
        assert len(stored) == 3 and {v["kind"] for v in stored} == {"import"}
        assert stored[0]["context"]["params"] == {"name": "import_os"}


async def test_what_the_manifest_does_not_declare_is_refused(make_settings, tmp_path: Path):
    source = tmp_path / "undeclared-src" / "probe"
    shutil.copytree(PROBE, source)
    code = source / "probe_plugin" / "__init__.py"
    code.write_text(
        code.read_text() + '\n\n@route("/hidden")\ndef hidden(request):\n    return {"hidden": True}\n\n\n'
        'panel("ghost", "Ghost")\n'
    )
    (source / "probe_plugin" / "panels" / "ghost").mkdir()
    (source / "probe_plugin" / "panels" / "ghost" / "index.html").write_text("<p>ghost</p>")
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, source, tmp_path)
        assert (await client.get("/api/v1/x/probe/echo", headers=VIEWER)).status_code == 200
        assert (await client.get("/api/v1/x/probe/hidden", headers=VIEWER)).status_code == 404
        assert (await client.get("/panels/probe/ghost/index.html", headers=VIEWER)).status_code == 404
        assert (await client.get("/panels/probe/probe/index.html", headers=VIEWER)).status_code == 200

        async def refused() -> set[str]:
            details = {v["detail"] for v in await violations(client, "probe") if v["kind"] == "permission"}
            return details if len(details) >= 2 else set()

        assert await eventually(refused) == {
            "route GET /hidden is not declared in the manifest",
            "panel 'ghost' is not declared in the manifest",
        }
