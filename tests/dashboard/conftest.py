"""Dashboard fixtures: the real app in-process with browser-like clients (cookies, form login)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from builtin_plugins.auth.audit import Actor
from kernel.app import KernelApp, create_app
from kernel.settings import Settings
from tests.auth.conftest import FAST_AUTH, PASSWORD, TEST_SECRET
from tests.conftest import running

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def build_panel_plugin(source: Path, out: Path, name: str) -> Path:
    """Zip a panel plugin folder (manifest, entry module, panels/) the way the registry accepts it."""
    import zipfile

    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}-1.0.0.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.name != "build.py":
                archive.write(path, f"{name}/{path.relative_to(source).as_posix()}")
    return target


@dataclass
class Browser:
    """An httpx client that behaves like a signed-in browser: cookies, and the page's CSRF token."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def page(self, path: str, **kw: Any) -> httpx.Response:
        response = await self.client.get(path, **kw)
        found = CSRF_META.search(response.text)
        if found:
            self.csrf = found.group(1)
        return response

    def write_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


@dataclass
class DashEnv:
    app: KernelApp
    client: httpx.AsyncClient
    browsers: list[Browser] = field(default_factory=list)

    @property
    def kernel(self) -> Any:
        return self.app.kernel

    async def user(self, username: str, role: str) -> Any:
        return await self.kernel.services["auth"].users.create(username, PASSWORD, role, Actor("cli", name="tests"))

    def new_client(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://testserver")
        return client

    async def sign_in(self, username: str, password: str = PASSWORD, next_path: str = "/") -> Browser:
        client = self.new_client()
        browser = Browser(client)
        self.browsers.append(browser)
        form = await client.get("/login", params={"next": next_path})
        token = CSRF_FIELD.search(form.text).group(1)
        response = await client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token, "next": next_path}
        )
        assert response.status_code == 303, response.text
        await browser.page(response.headers["location"], follow_redirects=True)
        return browser

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.client.aclose()


def dash_settings(make_settings: Callable[..., Settings], auth: dict[str, Any], **dashboard: Any) -> Settings:
    return make_settings(plugins={"auth": {**FAST_AUTH, **auth}, "dashboard": dashboard}, secret_key=TEST_SECRET)


@pytest.fixture
def dash(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """``async with dash(**dashboard_settings) as env``: the app with every builtin plugin, and users
    ``admin`` and ``viewer`` (password ``PASSWORD``)."""

    @asynccontextmanager
    async def start(auth: dict[str, Any] | None = None, **dashboard: Any) -> AsyncIterator[DashEnv]:
        app = create_app(dash_settings(make_settings, auth or {}, **dashboard), configure_logs=False)
        async with running(app) as client:
            env = DashEnv(app, client)
            await env.user("admin", "admin")
            await env.user("viewer", "viewer")
            try:
                yield env
            finally:
                await env.close()

    return start


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
