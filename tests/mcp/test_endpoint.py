"""TaylorDash as an MCP server: an ``mcp`` SDK client on a real uvicorn server, with API tokens."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from builtin_plugins.auth.audit import Actor
from kernel.app import create_app
from tests.auth.conftest import PASSWORD
from tests.support.services import free_port


@asynccontextmanager
async def served(settings) -> AsyncIterator[tuple[str, Any]]:
    app = create_app(settings, configure_logs=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, timeout_graceful_shutdown=2)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.kernel
    finally:
        server.should_exit = True
        await task


async def api_token(base: str, kernel: Any, role: str) -> str:
    """A real API token scoped to ``role``, made by an administrator through the auth API."""
    username = f"admin-{uuid.uuid4().hex[:6]}"
    await kernel.services["auth"].users.create(username, PASSWORD, "admin", Actor("cli", name="tests"))
    async with httpx.AsyncClient(base_url=base) as client:
        login = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        access = login.json()["access_token"]
        made = await client.post(
            "/api/v1/auth/tokens", json={"name": "agent", "role": role}, headers={"Authorization": f"Bearer {access}"}
        )
        assert made.status_code == 201, made.text
        return made.json()["token"]


@asynccontextmanager
async def mcp_session(base: str, token: str) -> AsyncIterator[ClientSession]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http, streamable_http_client(f"{base}/mcp", http_client=http) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=30) as session:
            await session.initialize()
            yield session


def _json(result: Any) -> dict[str, Any]:
    assert result.is_error is False, result.content
    return json.loads(result.content[0].text)


async def test_agent_creates_a_task_over_mcp(mcp_settings):
    async with served(mcp_settings()) as (base, kernel):
        admin = await api_token(base, kernel, "admin")
        bearer = {"Authorization": f"Bearer {admin}"}
        async with httpx.AsyncClient(base_url=base, headers=bearer) as rest:
            project = (await rest.post("/api/v1/projects", json={"name": "Apollo"})).json()
            component = (
                await rest.post(f"/api/v1/projects/{project['id']}/components", json={"name": "Engine"})
            ).json()

            async with mcp_session(base, admin) as session:
                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert {"projects_list", "projects_get", "tasks_create", "tasks_update", "events_recent"} <= set(tools)
                assert tools["tasks_create"].input_schema["properties"]["component_id"]["format"] == "uuid"

                listed = _json(await session.call_tool("projects_list", {"limit": 5}))
                assert [p["id"] for p in listed["items"]] == [project["id"]]

                created = _json(
                    await session.call_tool(
                        "tasks_create",
                        {"component_id": component["id"], "title": "Check the seals", "labels": ["seals"]},
                    )
                )
                assert created["title"] == "Check the seals" and created["labels"] == ["seals"]

                bad = await session.call_tool("tasks_create", {"component_id": "not-a-uuid", "title": "x"})
                assert bad.is_error and "component_id" in bad.content[0].text

            task = await rest.get(f"/api/v1/tasks/{created['id']}")
            assert task.status_code == 200, task.text
            assert task.json()["title"] == "Check the seals"
            assert task.json()["component_id"] == component["id"]
            listed = (await rest.get(f"/api/v1/components/{component['id']}/tasks")).json()["items"]
            assert [t["id"] for t in listed] == [created["id"]]


async def test_viewer_sees_and_calls_only_what_its_role_allows(mcp_settings):
    async with served(mcp_settings()) as (base, kernel):
        viewer = await api_token(base, kernel, "viewer")
        async with httpx.AsyncClient(base_url=base) as client:
            # DNS-rebinding protection: a Host outside the configured allow list is refused
            rebound = await client.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={"Authorization": f"Bearer {viewer}", "Host": "evil.example:80"},
            )
            assert rebound.status_code == 421
        async with mcp_session(base, viewer) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            assert {"projects_list", "events_recent"} <= names
            assert not names & {"tasks_create", "tasks_update"}
            refused = await session.call_tool("tasks_create", {"component_id": str(uuid.uuid4()), "title": "sneaky"})
            assert refused.is_error and "projects:write" in refused.content[0].text
            recent = _json(await session.call_tool("events_recent", {"limit": 5}))
            assert "items" in recent and all(not e["topic"].startswith("tracker/events/auth/") for e in recent["items"])


async def test_no_token_no_mcp(mcp_settings):
    async with served(mcp_settings()) as (base, _kernel):
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        headers = {"Accept": "application/json, text/event-stream"}
        async with httpx.AsyncClient(base_url=base) as client:
            refused = await client.post("/mcp", json=initialize, headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.headers["www-authenticate"] == "Bearer"
            forged = await client.post(
                "/mcp", json=initialize, headers={**headers, "Authorization": "Bearer td_forged"}
            )
            assert forged.status_code == 401
        with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the 401 as a transport error
            async with mcp_session(base, "td_forged") as session:
                await session.list_tools()


async def test_remote_server_over_streamable_http(mcp_settings):
    """The manager's streamable-HTTP client against a real remote MCP server: this very instance's /mcp."""
    async with served(mcp_settings()) as (base, kernel):
        token = await api_token(base, kernel, "viewer")
        admin = {"Authorization": f"Bearer {await api_token(base, kernel, 'admin')}"}
        async with httpx.AsyncClient(base_url=base, headers=admin) as rest:
            body = {"name": "self", "url": f"{base}/mcp", "headers": {"Authorization": f"Bearer {token}"}}
            created = await rest.post("/api/v1/mcp/servers", json=body)
            assert created.status_code == 201 and created.json()["headers"] == {"Authorization": "********"}
            await rest.post("/api/v1/mcp/servers/self/start")
            conn = kernel.services["mcp"].connections["self"]
            assert await conn.wait_for({"ready", "failed"}, 60) == "ready", conn.last_error

            tools = {t["tool"] for t in (await rest.get("/api/v1/mcp/tools?server=self")).json()["items"]}
            assert "projects_list" in tools and "tasks_create" not in tools  # the viewer token's view
            await rest.post("/api/v1/projects", json={"name": "Gemini"})
            called = await rest.post("/api/v1/mcp/servers/self/tools/projects_list/call", json={"arguments": {}})
            assert called.status_code == 200, called.text
            assert [p["name"] for p in json.loads(called.json()["content"][0]["text"])["items"]] == ["Gemini"]

            wrong = {"name": "wrong", "url": f"{base}/mcp", "headers": {"Authorization": "Bearer td_wrong"}}
            await rest.post("/api/v1/mcp/servers", json=wrong)
            await rest.post("/api/v1/mcp/servers/wrong/start")
            failed = kernel.services["mcp"].connections["wrong"]
            assert await failed.wait_for({"ready", "failed"}, 60) == "failed"
            assert "td_wrong" not in (failed.last_error or "")
            await rest.post("/api/v1/mcp/servers/wrong/stop")
            await rest.post("/api/v1/mcp/servers/self/stop")
            assert conn.state == "stopped"
