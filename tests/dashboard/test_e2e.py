"""End-to-end: the real server (uvicorn, PostgreSQL) driven by headless Chromium through Playwright.

The tests of this module run in order against one server and share what they create, like a person
working through the product: sign in, build a project, move a task, watch a second browser follow,
install the example panel, face a hostile panel, look as a viewer. Screenshots of the main pages go
to docs/screenshots/ on the way.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.conftest import PASSWORD, TEST_SECRET
from tests.dashboard.conftest import FIXTURES, ROOT, build_panel_plugin
from tests.support import services
from tests.support.cli import clean_env, run, serving

CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "docs" / "screenshots"
TIMEOUT = 30_000  # ms: generous, the machine is shared

playwright_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        services.unavailable("Debian's chromium is not installed (apt-get install -y chromium)")
    tmp = tmp_path_factory.mktemp("e2e")
    env = clean_env(
        TD_DATABASE_URL=postgres.create_database(),
        TD_DATA_DIR=str(tmp / "data"),
        TD_SECRET_KEY=TEST_SECRET,
        TD_LOG_LEVEL="warning",
        TD_PLUGINS__AUTH__ARGON2_TIME_COST="1",
        TD_PLUGINS__AUTH__ARGON2_MEMORY_KIB="64",
        TD_PLUGINS__AUTH__ARGON2_PARALLELISM="1",
        TD_PLUGINS__DASHBOARD__KIOSK=json.dumps({"wall": "/"}),
    )
    assert run("db", "upgrade", env=env).returncode == 0
    for name, role in (("alice", "admin"), ("victor", "viewer"), ("wall", "viewer")):
        created = run("users", "create", name, "--role", role, "--password-stdin", env=env, input=PASSWORD + "\n")
        assert created.returncode == 0, created.stderr
    with serving(env, log=tmp / "server.log", timeout=120) as base:
        yield {"base": base, "tmp": tmp, "state": {}}


@pytest.fixture(scope="module")
def browser(server: dict[str, Any]) -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def new_page(browser: Any, server: dict[str, Any], user: str | None = None, **context: Any) -> Any:
    context.setdefault("viewport", {"width": 1366, "height": 900})
    ctx = browser.new_context(base_url=server["base"], **context)
    ctx.set_default_timeout(TIMEOUT)
    page = ctx.new_page()
    if user is not None:
        sign_in(page, user)
    return page


def sign_in(page: Any, user: str) -> None:
    page.goto("/login")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state("domcontentloaded")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def wait_live(page: Any) -> None:
    page.wait_for_function("() => document.body.getAttribute('data-stream') === 'open'")


def api(server: dict[str, Any], page: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    """An API call with the session of ``page`` (its cookies), as the page's own scripts make them."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    csrf = page.get_attribute('meta[name="csrf-token"]', "content")
    return httpx.request(
        method, server["base"] + path, cookies=cookies, headers={"X-CSRF-Token": csrf or ""}, timeout=30, **kw
    )


def test_login(browser: Any, server: dict[str, Any]) -> None:
    page = new_page(browser, server)
    page.goto("/")
    assert "/login" in page.url
    page.fill('input[name="username"]', "alice")
    shot(page, "login")
    page.fill('input[name="password"]', "not the password")
    page.click('button[type="submit"]')
    assert "invalid username or password" in page.inner_text('[data-testid="login-error"]')
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_selector("h1:has-text('Overview')")
    assert page.inner_text('[data-testid="whoami"]').startswith("alice")
    assert page.evaluate("document.cookie") == ""  # the session cookies are HttpOnly
    page.context.close()


def test_build_a_project_move_a_task_and_see_it_live(browser: Any, server: dict[str, Any]) -> None:
    page = new_page(browser, server, "alice")
    page.goto("/projects")
    page.click("summary:has-text('New project')")
    page.fill('#new input[name="name"]', "Apollo")
    page.fill('#new textarea[name="description"]', "Land on the moon")
    page.click("#new button[type=submit]")
    page.wait_for_url(re.compile(r"/projects/[0-9a-f-]{36}$"))
    project_url = page.url
    server["state"]["project_url"] = project_url
    for name, minutes in (("Design", 60), ("Build", 240), ("Docs", 30)):
        if not page.is_visible('#components input[name="name"]'):
            page.click("summary:has-text('Add a component')")
        page.fill('#components input[name="name"]', name)
        page.fill('#components input[name="estimate_minutes"] >> nth=0', str(minutes))
        page.click("#components button:has-text('Add component')")
        page.wait_for_selector(f'#components li[data-component="{name}"]')
    page.click("summary:has-text('Add a dependency')")
    page.select_option('select[name="component"] >> nth=0', label="Build")
    page.select_option('select[name="depends_on"]', label="Design")
    page.click("button:has-text('Add dependency')")
    page.wait_for_selector("[data-edge] >> nth=0", state="attached")
    for title, component in (("Sketch the lander", "Design"), ("Weld the frame", "Build")):
        if not page.is_visible('#components input[name="title"]'):
            page.click("summary:has-text('Add a task')")
        page.fill('#components input[name="title"]', title)
        page.select_option('#components form:has(input[name="title"]) select[name="component"]', label=component)
        page.click("button:has-text('Add task')")
        page.wait_for_selector(f'[data-testid="column-todo"] .task-card[data-title="{title}"]')

    watcher = new_page(browser, server, "victor")
    watcher.goto(project_url)
    wait_live(watcher)
    wait_live(page)
    before = page.inner_text('[data-testid="project-progress"]')
    assert before.strip() == "0%"

    page.drag_and_drop('.task-card[data-title="Sketch the lander"]', '[data-testid="column-done"]')
    page.wait_for_selector('[data-testid="column-done"] .task-card[data-title="Sketch the lander"]')
    # The card moves at once; the server's answer to the change is the toast that confirms it.
    page.wait_for_function("() => document.getElementById('toast').textContent === 'Task moved to done'")
    project_id = project_url.rsplit("/", 1)[1]
    expected = api(server, page, "GET", f"/api/v1/projects/{project_id}").json()["progress"]
    assert expected > 0
    page.wait_for_function(
        "p => document.querySelector('[data-testid=project-progress]').innerText.trim() === p + '%'", arg=expected
    )
    # The second browser follows without reloading: the task moved, the progress changed.
    watcher.wait_for_selector('[data-testid="column-done"] .task-card[data-title="Sketch the lander"]')
    watcher.wait_for_function(
        "p => document.querySelector('[data-testid=project-progress]').innerText.trim() === p + '%'", arg=expected
    )
    assert watcher.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded

    # The critical path is Design (60) -> Build (240); Docs is off it.
    assert page.get_attribute('[data-node="Design"]', "data-critical") == "true"
    assert page.get_attribute('[data-node="Build"]', "data-critical") == "true"
    assert page.get_attribute('[data-node="Docs"]', "data-critical") == "false"
    assert page.locator("path.edge.critical").count() == 1
    assert page.inner_text('[data-testid="critical-minutes"]') == "300"
    shot(page, "project")

    page.fill("#travel", "1")
    page.dispatch_event("#travel", "input")
    page.wait_for_function("() => document.querySelector('[data-testid=travel-out]').innerText.includes('UTC')")
    shot(watcher, "project-viewer")
    watcher.context.close()

    page.goto("/")
    page.wait_for_selector('[data-testid="live-feed"] li')
    assert "Apollo" in page.inner_text("#overview-projects")
    assert page.inner_text('[data-count="done"]') == "1"
    page.close()


def test_example_panel_plugin_is_uploaded_enabled_and_shown(browser: Any, server: dict[str, Any]) -> None:
    archive = build_panel_plugin(ROOT / "examples" / "status_panel", server["tmp"] / "pkg", "status-panel")
    page = new_page(browser, server, "alice")
    page.goto("/plugins")
    page.set_input_files('input[type="file"][name="file"]', str(archive))
    page.click("button:has-text('Upload and scan')")
    page.wait_for_url(re.compile(r"/plugins/status-panel$"))
    assert page.inner_text('[data-testid="plugin-status"]') == "scanned"
    page.click("button:has-text('Enable')")
    page.wait_for_function("() => document.querySelector('[data-testid=plugin-status]').innerText === 'enabled'")
    page.locator("#plugin-permissions", has_text="projects:read granted").wait_for()
    shot(page, "plugin")
    page.goto("/")
    frame = page.frame_locator('iframe[data-plugin="status-panel"]')
    summary = frame.locator('[data-testid="status-summary"]')
    summary.wait_for()
    expected = len(api(server, page, "GET", "/api/v1/projects").json()["items"])
    assert expected >= 1
    frame.locator(f"text={expected} projects").wait_for()
    assert "Apollo" in frame.locator("#projects").inner_text()
    shot(page, "overview")
    page.goto("/plugins")
    shot(page, "plugins")
    page.close()


def test_a_malicious_panel_stays_in_its_sandbox(browser: Any, server: dict[str, Any]) -> None:
    archive = build_panel_plugin(FIXTURES / "evil_panel", server["tmp"] / "evil", "evil-panel")
    page = new_page(browser, server, "alice")
    uploaded = api(server, page, "POST", "/api/v1/plugins", files={"file": (archive.name, archive.read_bytes())})
    assert uploaded.status_code == 201, uploaded.text
    assert api(server, page, "POST", "/api/v1/plugins/evil-panel/enable").status_code == 200
    page.goto("/")
    page.evaluate("window.localStorage.setItem('td-secret', 'host-only')")
    start_url = page.url
    frame = page.frame_locator('iframe[data-plugin="evil-panel"]')
    results = frame.locator('[data-testid="results"]')
    results.locator("text=/bridgeProjects/").wait_for()
    found = json.loads(results.inner_text())
    for attack in ("cookie", "localStorage", "sessionStorage", "parentDom", "parentCookie", "topLocation", "fetch"):
        assert found[attack].startswith("blocked"), (attack, found[attack])
    assert found["bridgeUsers"].startswith("refused")
    assert found["bridgeProjects"].startswith("refused")  # it holds events:read, not projects:read
    assert page.url == start_url  # the top window was not navigated
    assert page.evaluate("window.localStorage.getItem('td-secret')") == "host-only"
    assert page.inner_text("h1") == "Overview"
    assert api(server, page, "POST", "/api/v1/plugins/evil-panel/disable").status_code == 200
    page.reload()
    assert page.locator('iframe[data-plugin="evil-panel"]').count() == 0
    page.close()


def test_a_viewer_sees_no_write_controls(browser: Any, server: dict[str, Any]) -> None:
    page = new_page(browser, server, "victor")
    for path in (
        "/",
        "/projects",
        server["state"]["project_url"],
        "/plugins",
        "/plugins/status-panel",
        "/users",
        "/dlq",
    ):
        page.goto(path)
        assert page.locator("[data-write]").count() == 0, path
        assert page.locator('[draggable="true"]').count() == 0, path
        assert page.locator("button.primary").count() == 0, path
    page.goto(server["state"]["project_url"])
    refused = api(server, page, "POST", "/api/v1/projects", json={"name": "Sneaky"})
    assert refused.status_code == 403
    nav = page.inner_text("header nav")
    assert "Audit" not in nav and "Logs" not in nav
    page.close()


def test_kiosk_account_and_page_screenshots(browser: Any, server: dict[str, Any]) -> None:
    wall = new_page(browser, server, "wall", viewport={"width": 1024, "height": 768})
    wall.goto("/events")
    assert wall.url.rstrip("/") == server["base"]  # kiosk accounts see their one page
    assert wall.locator("header.topbar").count() == 0
    shot(wall, "kiosk")
    wall.close()
    page = new_page(browser, server, "alice")
    for path, name in (
        ("/projects", "projects"),
        ("/events", "events"),
        ("/dlq", "dlq"),
        ("/users", "users"),
        ("/audit", "audit"),
        ("/logs", "logs"),
        ("/mcp-servers", "mcp"),
    ):
        page.goto(path)
        shot(page, name)
    page.goto("/")
    page.click("[data-theme-toggle]")
    theme = page.evaluate("document.documentElement.getAttribute('data-theme')")
    assert theme in ("dark", "light")
    if theme == "light":
        page.click("[data-theme-toggle]")
    page.reload()
    assert page.evaluate("document.documentElement.getAttribute('data-theme')") == "dark"
    page.frame_locator('iframe[data-plugin="status-panel"]').locator('[data-testid="status-summary"]').wait_for()
    shot(page, "overview-dark")
    tablet = new_page(browser, server, "alice", viewport={"width": 820, "height": 1180})
    tablet.goto(server["state"]["project_url"])
    shot(tablet, "project-tablet")
    tablet.close()
    page.close()
    assert os.path.getsize(SHOTS / "overview.png") > 10_000
