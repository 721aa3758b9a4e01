"""Fixtures of the MCP plugin tests: the real app with every builtin plugin and the real
``mcp-server-time`` from PyPI as the managed server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kernel.app import KernelApp, create_app
from kernel.settings import Settings
from tests.auth.conftest import FAST_AUTH, TEST_SECRET
from tests.conftest import running
from tests.support.plugins import HeaderAuth

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}
# The real third-party server, run by the interpreter of this venv (installed by the test extra).
TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
FAST_SUPERVISION = {"ping_interval_seconds": 0.5, "restart_backoff_seconds": 0.2, "start_timeout_seconds": 60}


@pytest.fixture
def mcp_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**mcp: Any) -> Settings:
        return make_settings(plugins={"auth": FAST_AUTH, "mcp": {**FAST_SUPERVISION, **mcp}}, secret_key=TEST_SECRET)

    return make


@dataclass
class McpEnv:
    app: KernelApp
    client: httpx.AsyncClient

    @property
    def kernel(self) -> Any:
        return self.app.kernel

    @property
    def manager(self) -> Any:
        return self.kernel.services["mcp"]

    async def add(self, name: str = "time", **body: Any) -> dict[str, Any]:
        body = {"name": name, **TIME_SERVER, **body}
        response = await self.client.post("/api/v1/mcp/servers", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return response.json()

    async def state(self, name: str, wanted: set[str], seconds: float = 60) -> str:
        return await self.manager.connections[name].wait_for(wanted, seconds)

    async def started(self, name: str = "time") -> dict[str, Any]:
        response = await self.client.post(f"/api/v1/mcp/servers/{name}/start", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert await self.state(name, {"ready", "failed"}) == "ready", self.manager.connections[name].last_error
        return (await self.client.get(f"/api/v1/mcp/servers/{name}", headers=ADMIN)).json()


@pytest.fixture
def mcp_app(mcp_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """``async with mcp_app(**mcp_settings) as env``: the app, header-authenticated (x-test-role)."""

    @asynccontextmanager
    async def start(**mcp: Any) -> AsyncIterator[McpEnv]:
        app = create_app(mcp_settings(**mcp), [("testauth", HeaderAuth())], configure_logs=False)
        async with running(app) as client:
            yield McpEnv(app, client)
            await asyncio.sleep(0.1)  # let the relay publish the last events before the app stops

    return start
