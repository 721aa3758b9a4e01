"""Fixtures for the projects plugin: the real app on SQLite and PostgreSQL, header-authenticated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kernel.app import create_app
from kernel.settings import Settings
from tests.conftest import running
from tests.support.plugins import HeaderAuth

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}


class Api:
    """An admin client with shortcuts that create objects and fail loudly when creation fails."""

    def __init__(self, client: httpx.AsyncClient, app: Any) -> None:
        self.client = client
        self.app = app

    @property
    def kernel(self) -> Any:
        return self.app.kernel

    async def request(self, method: str, url: str, role: str = "admin", **kw: Any) -> httpx.Response:
        headers = {"x-test-role": role, **kw.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kw)

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("POST", url, **kw)

    async def patch(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kw)

    async def put(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("PUT", url, **kw)

    async def delete(self, url: str, **kw: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kw)

    async def _create(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(url, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    async def project(self, **body: Any) -> dict[str, Any]:
        return await self._create("/api/v1/projects", {"name": "Apollo", **body})

    async def component(self, project_id: str, **body: Any) -> dict[str, Any]:
        return await self._create(f"/api/v1/projects/{project_id}/components", {"name": "Engine", **body})

    async def task(self, component_id: str, **body: Any) -> dict[str, Any]:
        return await self._create(f"/api/v1/components/{component_id}/tasks", {"title": "Build", **body})

    async def depend(self, component_id: str, depends_on_id: str) -> httpx.Response:
        return await self.put(f"/api/v1/components/{component_id}/dependencies/{depends_on_id}")


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings, [("testauth", HeaderAuth())], configure_logs=False)
    async with running(app) as client:
        yield Api(client, app)
        await pipeline_idle(app.kernel)


async def pipeline_idle(kernel: Any, seconds: float = 10.0) -> None:
    """Wait until the event pipeline has moved every event out of the outbox and gone quiet.

    Stopping the kernel while the relay is being woken can lose the relay task's cancellation
    (``asyncio.wait_for`` on Python 3.11), and shutdown then waits for it forever; an idle pipeline at
    shutdown avoids that race (reported to the bus's owner)."""
    for _ in range(int(seconds / 0.05)):
        async with kernel.db.engine.connect() as conn:
            if (await conn.execute(sa.text("SELECT count(*) FROM event_outbox"))).scalar_one() == 0:
                break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
