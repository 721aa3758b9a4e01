"""Server-side tests of the dashboard on SQLite and PostgreSQL: sessions, CSRF, pages, roles, panels."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from builtin_plugins.dashboard.config import DashboardSettings
from builtin_plugins.dashboard.graph import layout
from builtin_plugins.dashboard.routes import safe_next
from sdk import RequestContext, Route, hookimpl
from tests.auth.oidc_provider import serve_provider
from tests.auth.test_oidc import oidc_settings
from tests.dashboard.conftest import FIXTURES, ROOT, Browser, build_panel_plugin

PAGES = ["/", "/projects", "/events", "/dlq", "/plugins", "/plugins/auth", "/mcp-servers", "/users", "/audit", "/logs"]


async def make_project(browser, name: str = "Apollo") -> dict:
    h = browser.write_headers()
    c = browser.client
    project = (await c.post("/api/v1/projects", json={"name": name}, headers=h)).json()
    design = (
        await c.post(
            f"/api/v1/projects/{project['id']}/components", json={"name": "Design", "estimate_minutes": 60}, headers=h
        )
    ).json()
    build = (
        await c.post(
            f"/api/v1/projects/{project['id']}/components", json={"name": "Build", "estimate_minutes": 240}, headers=h
        )
    ).json()
    docs = (
        await c.post(
            f"/api/v1/projects/{project['id']}/components", json={"name": "Docs", "estimate_minutes": 30}, headers=h
        )
    ).json()
    assert (await c.put(f"/api/v1/components/{build['id']}/dependencies/{design['id']}", headers=h)).status_code == 201
    task = (await c.post(f"/api/v1/components/{design['id']}/tasks", json={"title": "Sketch"}, headers=h)).json()
    return {"project": project, "design": design, "build": build, "docs": docs, "task": task}


async def test_anonymous_pages_redirect_to_login_and_api_answers_401(dash) -> None:
    async with dash() as env:
        for path in PAGES:
            response = await env.client.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
        assert (await env.client.get("/api/v1/projects")).status_code == 401
        login = await env.client.get("/login")
        assert login.status_code == 200
        assert 'name="username"' in login.text and 'name="password"' in login.text
        assert "OIDC" not in login.text  # not configured


async def test_login_sets_strict_httponly_cookies_and_refuses_bad_input(dash) -> None:
    async with dash() as env:
        client = env.new_client()
        form = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        forged = await client.post("/login", data={"username": "admin", "password": "x" * 12, "csrf_token": "forged"})
        assert forged.status_code == 403
        token = re.search(r'name="csrf_token" value="([^"]+)"', forged.text).group(1)  # the page renews it
        wrong = await client.post(
            "/login", data={"username": "admin", "password": "wrong password!", "csrf_token": token}
        )
        assert wrong.status_code == 401
        assert "invalid username or password" in wrong.text
        assert "td_access" not in client.cookies
        token = re.search(r'name="csrf_token" value="([^"]+)"', wrong.text).group(1)
        good = await client.post(
            "/login",
            data={
                "username": "admin",
                "password": "correct horse battery staple",
                "csrf_token": token,
                "next": "//evil.example/x",
            },
        )
        assert good.status_code == 303
        assert good.headers["location"] == "/"  # no open redirect
        cookies = [v for k, v in good.headers.multi_items() if k == "set-cookie"]
        access = next(c for c in cookies if c.startswith("td_access="))
        refresh = next(c for c in cookies if c.startswith("td_refresh="))
        for cookie in (access, refresh):
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
            assert "Secure" not in cookie  # plain http here; https adds it
        me = await client.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["username"] == "admin"
        await client.aclose()


def test_kiosk_setting_reads_json_or_pairs_and_refuses_foreign_pages() -> None:
    assert DashboardSettings(kiosk='{"Wall": "/projects"}').kiosk == {"wall": "/projects"}
    assert DashboardSettings(kiosk="wall=/, lobby=/events").kiosk == {"wall": "/", "lobby": "/events"}
    for bad in ('{"wall": "https://evil.example/"}', "wall=//evil.example"):
        with pytest.raises(ValidationError):
            DashboardSettings(kiosk=bad)


def test_safe_next_keeps_only_local_paths() -> None:
    assert safe_next("/projects?q=a") == "/projects?q=a"
    for bad in ("//evil.example", "https://evil.example/", "javascript:alert(1)", "", None, "projects"):
        assert safe_next(bad) == "/"


async def test_every_page_renders_for_an_admin(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        for path in PAGES:
            response = await admin.page(path)
            assert response.status_code == 200, (path, response.text[:500])
            assert response.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert 'data-testid="whoami"' in response.text
        mcp = await admin.page("/mcp-servers")
        assert "MCP plugin not enabled" not in mcp.text and "No servers configured." in mcp.text


async def test_cookie_writes_need_the_csrf_token(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        refused = await admin.client.post("/api/v1/projects", json={"name": "No token"})
        assert refused.status_code == 403
        assert refused.json()["type"] == "urn:taylordash:problem:csrf-failed"
        wrong = await admin.client.post("/api/v1/projects", json={"name": "Bad"}, headers={"X-CSRF-Token": "0" * 64})
        assert wrong.status_code == 403
        made = await admin.client.post("/api/v1/projects", json={"name": "With token"}, headers=admin.write_headers())
        assert made.status_code == 201
        listed = (await admin.client.get("/api/v1/projects")).json()["items"]
        assert [p["name"] for p in listed] == ["With token"]


async def test_overview_and_project_pages_show_progress_counts_and_graph(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        made = await make_project(admin)
        pid = made["project"]["id"]
        await admin.client.patch(
            f"/api/v1/tasks/{made['task']['id']}", json={"status": "done"}, headers=admin.write_headers()
        )
        overview = (await admin.page("/")).text
        assert "Apollo" in overview
        assert re.search(r'data-count="done">1<', overview)
        assert re.search(r'data-count="todo">0<', overview)
        project = (await admin.page(f"/projects/{pid}")).text
        assert 'data-testid="column-done"' in project
        done_column = project.split('data-testid="column-done"', 1)[1].split('data-testid="column-cancelled"', 1)[0]
        assert "Sketch" in done_column
        # Design (60) -> Build (240) is the critical path; Docs stands alone.
        assert re.search(r'data-node="Design" data-critical="true"', project)
        assert re.search(r'data-node="Build" data-critical="true"', project)
        assert re.search(r'data-node="Docs" data-critical="false"', project)
        assert 'class="edge critical"' in project
        assert 'data-testid="critical-minutes">300<' in project
        search = await admin.client.get("/projects", params={"q": "apol"}, headers={"HX-Request": "true"})
        assert "Apollo" in search.text and "<html" not in search.text
        nothing = await admin.client.get("/projects", params={"q": "zzzz"}, headers={"HX-Request": "true"})
        assert "No projects match" in nothing.text
        task_id = made["task"]["id"]
        attached = await admin.client.post(
            f"/api/v1/tasks/{task_id}/attachments",
            files={"file": ("notes.txt", b"lander sketches", "text/plain")},
            headers=admin.write_headers(),
        )
        assert attached.status_code == 201, attached.text
        task = (await admin.page(f"/tasks/{task_id}")).text
        assert "Sketch" in task
        link = f'href="/api/v1/tasks/{task_id}/attachments/{attached.json()["id"]}"'
        assert link in task and "notes.txt" in task
        assert "data-upload-form" in task  # admins may attach more
        download = await admin.client.get(f"/api/v1/tasks/{task_id}/attachments/{attached.json()['id']}")
        assert download.content == b"lander sketches"


async def test_viewers_get_no_write_controls_and_the_api_refuses_them(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        made = await make_project(admin)
        viewer = await env.sign_in("viewer")
        for path in [*PAGES, f"/projects/{made['project']['id']}"]:
            response = await viewer.page(path)
            assert response.status_code in (200, 403), path
            assert "data-write" not in response.text, path
            assert 'draggable="true"' not in response.text, path
        assert "Audit" not in (await viewer.page("/")).text.split("</nav>")[0]
        refused = await viewer.client.patch(
            f"/api/v1/tasks/{made['task']['id']}", json={"status": "done"}, headers=viewer.write_headers()
        )
        assert refused.status_code == 403
        assert refused.json()["type"] != "urn:taylordash:problem:csrf-failed"  # refused by permission


async def test_logout_ends_the_session_everywhere(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        access = admin.client.cookies["td_access"]
        bad = await admin.client.post("/logout", data={"csrf_token": "nope"})
        assert bad.status_code == 403
        out = await admin.client.post("/logout", data={"csrf_token": admin.csrf})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (
            await env.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {access}"})
        ).status_code == 401
        assert (await admin.client.get("/")).status_code == 303


async def test_refresh_cookie_renews_the_session_once_for_parallel_requests(dash) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        refresh = admin.client.cookies["td_refresh"]
        admin.client.cookies.delete("td_access")
        # Parallel requests present the same refresh token: all are served, the session survives.
        answers = await asyncio.gather(*(admin.client.get("/api/v1/auth/me") for _ in range(4)))
        assert [a.status_code for a in answers] == [200] * 4
        renewed = {c.split(";")[0] for a in answers for k, c in a.headers.multi_items() if k == "set-cookie"}
        assert len({c for c in renewed if c.startswith("td_refresh=")}) == 1
        assert admin.client.cookies["td_refresh"] != refresh
        admin.client.cookies.delete("td_access")
        again = await admin.client.get("/")
        assert again.status_code == 200


async def test_kiosk_account_sees_one_page_without_navigation(dash) -> None:
    async with dash(kiosk={"wall": "/projects"}) as env:
        await env.user("wall", "viewer")
        wall = await env.sign_in("wall")
        response = await wall.client.get("/")
        assert response.status_code == 303 and response.headers["location"] == "/projects"
        page = await wall.page("/projects")
        assert '<body class="kiosk"' in page.text
        assert 'class="topbar"' not in page.text
        assert (await wall.client.get("/events")).headers["location"] == "/projects"
        task = await wall.client.get(f"/tasks/{uuid.uuid4()}")  # details open from the board
        assert task.status_code == 404 and "Task unavailable" in task.text
        normal = await env.sign_in("viewer")
        assert 'class="topbar"' in (await normal.page("/projects")).text


async def test_panel_plugin_files_are_served_sandboxed_only_when_enabled(dash, tmp_path: Path) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        archive = build_panel_plugin(ROOT / "examples" / "status_panel", tmp_path, "status-panel")
        uploaded = await admin.client.post(
            "/api/v1/plugins",
            files={"file": (archive.name, archive.read_bytes(), "application/zip")},
            headers=admin.write_headers(),
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["verdict"] == "pass"
        url = "/panels/status-panel/status/index.html"
        assert (await admin.client.get(url)).status_code == 404  # not enabled yet
        assert "status-panel" not in (await admin.page("/")).text
        enabled = await admin.client.post("/api/v1/plugins/status-panel/enable", headers=admin.write_headers())
        assert enabled.status_code == 200, enabled.text
        page = await env.client.get(url)
        assert page.status_code == 200 and "panel.js" in page.text
        policy = page.headers["content-security-policy"]
        assert "sandbox allow-scripts" in policy and "connect-src 'none'" in policy
        assert "frame-ancestors 'self'" in policy and "allow-same-origin" not in policy
        script = await env.client.get("/panels/status-panel/status/panel.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        for bad in (
            "/panels/status-panel/status/../../taylordash-plugin.toml",
            "/panels/status-panel/other/index.html",
            "/panels/status-panel/status/%2e%2e/%2e%2e/status_panel/__init__.py",
        ):
            assert (await env.client.get(bad)).status_code == 404, bad
        overview = (await admin.page("/")).text
        frame = re.search(r"<iframe [^>]*data-plugin=\"status-panel\"[^>]*>", overview, re.S).group(0)
        assert 'sandbox="allow-scripts"' in frame and "allow-same-origin" not in frame
        assert 'data-bridge="project.get projects.list"' in frame
        await admin.client.post("/api/v1/plugins/status-panel/disable", headers=admin.write_headers())
        assert (await env.client.get(url)).status_code == 404


async def test_a_panel_without_the_panel_permission_gets_no_frame(dash, tmp_path: Path) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        source = tmp_path / "src"
        source.mkdir()
        for path in (FIXTURES / "evil_panel").rglob("*"):
            if path.is_file():
                target = source / path.relative_to(FIXTURES / "evil_panel")
                target.parent.mkdir(parents=True, exist_ok=True)
                text = path.read_text()
                if path.name == "taylordash-plugin.toml":
                    text = text.replace('"dashboard:panel", ', "")
                target.write_text(text)
        archive = build_panel_plugin(source, tmp_path, "evil-panel")
        uploaded = await admin.client.post(
            "/api/v1/plugins", files={"file": (archive.name, archive.read_bytes())}, headers=admin.write_headers()
        )
        assert uploaded.status_code == 201, uploaded.text
        await admin.client.post("/api/v1/plugins/evil-panel/enable", headers=admin.write_headers())
        assert "evil-panel" not in (await admin.page("/")).text
        assert (await env.client.get("/panels/evil-panel/evil/index.html")).status_code == 404


async def test_oidc_sign_in_from_the_login_page_ends_in_a_cookie_session(dash) -> None:
    async with serve_provider() as provider, dash(auth=oidc_settings(provider)) as env:
        login = await env.client.get("/login")
        assert 'href="/api/v1/auth/oidc/login"' in login.text
        browser = env.new_client()
        env.browsers.append(Browser(browser))
        provider.user = {"sub": "s-1", "preferred_username": "admin"}
        start = await browser.get("/api/v1/auth/oidc/login")
        async with httpx.AsyncClient() as at_provider:
            approved = await at_provider.get(start.headers["location"])
        callback = approved.headers["location"]
        landed = await browser.get(callback, headers={"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
        assert landed.status_code == 303 and landed.headers["location"] == "/"
        assert "td_access" in browser.cookies and "td_refresh" in browser.cookies
        overview = await browser.get("/")
        assert overview.status_code == 200 and 'data-testid="whoami">admin' in overview.text
        # API clients keep getting the token pair as JSON
        provider.user = {"sub": "s-1", "preferred_username": "admin"}
        api_client = env.new_client()
        start = await api_client.get("/api/v1/auth/oidc/login")
        async with httpx.AsyncClient() as at_provider:
            approved = await at_provider.get(start.headers["location"])
        answer = await api_client.get(approved.headers["location"])
        assert answer.status_code == 200 and "access_token" in answer.json()
        await api_client.aclose()


async def test_plugin_page_builds_the_config_form_from_the_schema(dash, tmp_path: Path) -> None:
    async with dash() as env:
        admin = await env.sign_in("admin")
        archive = build_panel_plugin(FIXTURES / "evil_panel", tmp_path, "evil-panel")
        uploaded = await admin.client.post(
            "/api/v1/plugins", files={"file": (archive.name, archive.read_bytes())}, headers=admin.write_headers()
        )
        assert uploaded.status_code == 201, uploaded.text
        page = (await admin.page("/plugins/evil-panel")).text
        assert 'data-testid="plugin-status">scanned<' in page
        assert re.search(r'<input name="label" type="text" data-type="string" value="" required>', page)
        assert re.search(r'name="retries" type="number" data-type="integer" value="1" min="0" max="5"', page)
        assert '<select name="mode"><option selected>quiet</option><option>loud</option></select>' in page
        assert 'name="verbose" data-type="boolean"' in page
        saved = await admin.client.put(
            "/api/v1/plugins/evil-panel/config",
            json={"label": "night shift", "retries": 3, "mode": "loud", "verbose": True},
            headers=admin.write_headers(),
        )
        assert saved.status_code == 200, saved.text
        page = (await admin.page("/plugins/evil-panel")).text
        assert "revision 1" in page and 'value="night shift"' in page and 'value="3"' in page
        assert "<option selected>loud</option>" in page
        viewer = await env.sign_in("viewer")
        seen = (await viewer.page("/plugins/evil-panel")).text
        assert "Configuration" not in seen and "data-write" not in seen and "Scan report" in seen


@pytest.mark.parametrize("levels", [2, 4])
def test_layout_puts_levels_in_columns_and_marks_the_critical_chain(levels: int) -> None:
    ids = [f"c{i}" for i in range(levels)]
    graph = {
        "nodes": [
            {"id": i, "name": i, "status": "planned", "progress": 0, "weight_minutes": 10, "level": n}
            for n, i in enumerate(ids)
        ]
        + [{"id": "x", "name": "x", "status": "done", "progress": 100, "weight_minutes": 1, "level": 0}],
        "edges": [{"source": ids[n + 1], "target": ids[n]} for n in range(levels - 1)],
        "critical_path": {"components": ids, "total_minutes": 10 * levels},
    }
    drawing = layout(graph)
    xs = {n.id: n.x for n in drawing.nodes}
    assert all(xs[ids[n]] < xs[ids[n + 1]] for n in range(levels - 1))
    assert {n.id for n in drawing.nodes if n.critical} == set(ids)
    assert all(e.critical for e in drawing.edges)
    assert drawing.width >= max(xs.values()) and drawing.critical_minutes == 10 * levels


class McpStandIn:
    """A plugin serving the MCP plugin's documented API paths and shapes, so the MCP page can be tested
    with the plugin present (the page must light up) and absent (it must say so)."""

    name = "mcp"

    def __init__(self) -> None:
        self.calls: list[dict] = []

    @hookimpl
    def register_permissions(self) -> dict[str, list[str]]:
        return {"mcp:read": ["admin", "viewer"], "mcp:call": ["admin"]}

    @hookimpl
    def register_routes(self, kernel) -> list[Route]:
        async def servers(ctx: RequestContext) -> dict:
            server = {"name": "files", "state": "running", "transport": "stdio", "tools": 1, "restarts": 0}
            return {"items": [server], "next_cursor": None}

        async def tools(ctx: RequestContext) -> dict:
            tool = {"name": "files.read", "server": "files", "tool": "read", "description": "Read a file"}
            return {"items": [{**tool, "allowed": True, "input_schema": {}}], "next_cursor": None}

        async def call(ctx: RequestContext) -> dict:
            body = await ctx.request.json()
            self.calls.append({**ctx.path_params, **body})
            return {"server": "files", "tool": "read", "is_error": False, "content": [], "duration_ms": 1.0}

        base = "/api/v1/mcp"
        return [
            Route(f"{base}/servers", servers, permission="mcp:read"),
            Route(f"{base}/tools", tools, permission="mcp:read"),
            Route(f"{base}/servers/{{name}}/tools/{{tool}}/call", call, methods=("POST",), permission="mcp:call"),
        ]


async def test_mcp_page_lights_up_when_the_mcp_plugin_serves_its_api(make_settings, fresh_database_url) -> None:
    from kernel.app import create_app
    from kernel.plugins import BUILTIN_PLUGINS
    from tests.conftest import running
    from tests.dashboard.conftest import DashEnv

    stand_in = McpStandIn()
    without_mcp = [name for name in BUILTIN_PLUGINS if name != "builtin_plugins.mcp"]
    app = create_app(
        without_mcp_settings(make_settings, fresh_database_url),
        [("mcp", stand_in)],
        builtins=without_mcp,
        configure_logs=False,
    )
    async with running(app) as client:
        env = DashEnv(app, client)
        await env.user("admin", "admin")
        await env.user("viewer", "viewer")
        admin = await env.sign_in("admin")
        page = (await admin.page("/mcp-servers")).text
        assert "MCP plugin not enabled" not in page
        assert 'data-server="files"' in page and "running" in page
        assert 'data-tool="files.read"' in page
        assert 'data-action="/api/v1/mcp/servers/files/tools/read/call"' in page
        called = await admin.client.post(
            "/api/v1/mcp/servers/files/tools/read/call",
            json={"arguments": {"path": "a"}},
            headers=admin.write_headers(),
        )
        assert called.status_code == 200 and stand_in.calls == [
            {"name": "files", "tool": "read", "arguments": {"path": "a"}}
        ]
        viewer = await env.sign_in("viewer")
        seen = (await viewer.page("/mcp-servers")).text
        assert 'data-tool="files.read"' in seen and "data-write" not in seen
        await env.close()


async def test_mcp_page_says_so_when_the_mcp_plugin_is_absent(make_settings, fresh_database_url) -> None:
    from kernel.app import create_app
    from kernel.plugins import BUILTIN_PLUGINS
    from tests.conftest import running
    from tests.dashboard.conftest import DashEnv

    without_mcp = [name for name in BUILTIN_PLUGINS if name != "builtin_plugins.mcp"]
    app = create_app(
        without_mcp_settings(make_settings, fresh_database_url), builtins=without_mcp, configure_logs=False
    )
    async with running(app) as client:
        env = DashEnv(app, client)
        await env.user("admin", "admin")
        admin = await env.sign_in("admin")
        assert "MCP plugin not enabled" in (await admin.page("/mcp-servers")).text
        await env.close()


def without_mcp_settings(make_settings, database_url: str):
    """Settings on a database of its own: one the MCP plugin never migrated, since it is left out."""
    from tests.dashboard.conftest import dash_settings

    return dash_settings(make_settings, {}).model_copy(update={"database_url": database_url})
