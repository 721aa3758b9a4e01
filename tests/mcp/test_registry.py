"""The registry API: CRUD, import/export of mcpServers documents, secrets encrypted at rest and masked
everywhere; calls: allow list, argument validation, timeouts, audit entries and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sqlalchemy as sa

from builtin_plugins.mcp.secrets import MASK
from tests.mcp.conftest import ADMIN, TIME_SERVER, VIEWER

SECRET = "sk-live-0123456789abcdef"
TOKEN = "Bearer tok-9876543210fedcba"
PROBLEM = "urn:taylordash:problem:"
SLOW_SERVER = str(Path(__file__).with_name("slow_server.py"))


async def _rows(kernel, sql: str, **params) -> list[dict]:
    async with kernel.db.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.text(sql), params)).mappings()]


async def test_import_export_and_secrets(mcp_app):
    document = {
        "mcpServers": {
            "time": {**TIME_SERVER, "env": {"API_KEY": SECRET}},
            "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": TOKEN}},
        }
    }
    async with mcp_app() as env:
        imported = await env.client.post("/api/v1/mcp/import", json=document, headers=ADMIN)
        assert imported.status_code == 200, imported.text
        assert sorted(imported.json()["created"]) == ["remote", "time"]

        # at rest: encrypted, and nothing in the row reveals the values
        rows = await _rows(env.kernel, "SELECT * FROM mcp_servers ORDER BY name")
        assert [r["transport"] for r in rows] == ["http", "stdio"]
        assert SECRET not in json.dumps(rows, default=str) and "tok-98765" not in json.dumps(rows, default=str)
        assert env.manager.box.open(rows[1]["env_encrypted"]) == {"API_KEY": SECRET}

        listed = await env.client.get("/api/v1/mcp/servers", headers=VIEWER)
        assert SECRET not in listed.text and "tok-98765" not in listed.text
        by_name = {s["name"]: s for s in listed.json()["items"]}
        assert by_name["time"]["env"] == {"API_KEY": MASK}
        assert by_name["remote"]["headers"] == {"Authorization": MASK}

        masked = await env.client.get("/api/v1/mcp/export", headers=ADMIN)
        assert masked.json()["mcpServers"]["time"]["env"] == {"API_KEY": MASK}
        assert SECRET not in masked.text
        assert (await env.client.get("/api/v1/mcp/export", headers=VIEWER)).status_code == 403
        revealed = await env.client.get("/api/v1/mcp/export?include_secrets=true", headers=ADMIN)
        assert revealed.json() == document
        audit = await _rows(
            env.kernel, "SELECT actor_id, details FROM auth_audit_log WHERE action = 'mcp.export_secrets'"
        )
        assert [a["actor_id"] for a in audit] == ["test-admin"]

        # importing again skips, unless asked to replace
        again = await env.client.post("/api/v1/mcp/import", json=document, headers=ADMIN)
        assert sorted(again.json()["skipped"]) == ["remote", "time"]
        document["mcpServers"]["time"]["args"] = ["-m", "mcp_server_time"]
        replaced = await env.client.post("/api/v1/mcp/import?replace=true", json=document, headers=ADMIN)
        assert sorted(replaced.json()["updated"]) == ["remote", "time"]
        assert (await env.client.get("/api/v1/mcp/servers/time", headers=ADMIN)).json()["args"] == [
            "-m",
            "mcp_server_time",
        ]

        # a masked value sent back keeps the stored secret; new names are added
        patched = await env.client.patch(
            "/api/v1/mcp/servers/time", json={"env": {"API_KEY": MASK, "REGION": "eu-west-1"}}, headers=ADMIN
        )
        assert patched.json()["env"] == {"API_KEY": MASK, "REGION": MASK}
        row = (await _rows(env.kernel, "SELECT env_encrypted FROM mcp_servers WHERE name = 'time'"))[0]
        assert env.manager.box.open(row["env_encrypted"]) == {"API_KEY": SECRET, "REGION": "eu-west-1"}

        half_bad = {"mcpServers": {"fine": TIME_SERVER, "x": {"command": "a", "url": "http://b"}}}
        bad = await env.client.post("/api/v1/mcp/import", json=half_bad, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["type"] == PROBLEM + "validation-error"
        assert (await env.client.get("/api/v1/mcp/servers/fine", headers=ADMIN)).status_code == 404


async def test_registry_problems(mcp_app):
    async with mcp_app() as env:
        await env.add()
        duplicate = await env.client.post("/api/v1/mcp/servers", json={"name": "time", **TIME_SERVER}, headers=ADMIN)
        assert duplicate.status_code == 409 and duplicate.json()["type"] == PROBLEM + "mcp-server-exists"
        missing = await env.client.get("/api/v1/mcp/servers/nope", headers=ADMIN)
        assert missing.status_code == 404 and missing.json()["type"] == PROBLEM + "mcp-server-not-found"
        for body in ({"name": "Bad Name", **TIME_SERVER}, {"name": "neither"}, {"name": "x", "url": "ftp://x"}):
            refused = await env.client.post("/api/v1/mcp/servers", json=body, headers=ADMIN)
            assert refused.status_code == 422, body
        both = await env.client.patch(
            "/api/v1/mcp/servers/time", json={"command": "x", "url": "http://x"}, headers=ADMIN
        )
        assert both.status_code == 422
        viewer = await env.client.post("/api/v1/mcp/servers", json={"name": "v", **TIME_SERVER}, headers=VIEWER)
        assert viewer.status_code == 403
        assert (await env.client.post("/api/v1/mcp/servers/time/start", headers=VIEWER)).status_code == 403
        not_ready = await env.client.post(
            "/api/v1/mcp/servers/time/tools/get_current_time/call", json={"arguments": {}}, headers=ADMIN
        )
        assert not_ready.status_code == 409 and not_ready.json()["type"] == PROBLEM + "mcp-server-not-ready"
        assert (await env.client.delete("/api/v1/mcp/servers/time", headers=ADMIN)).status_code == 204
        assert (await env.client.get("/api/v1/mcp/servers/time", headers=ADMIN)).status_code == 404
        events = await _rows(env.kernel, "SELECT body FROM event_outbox")
        mirrored = await _rows(env.kernel, "SELECT type FROM events_mirror WHERE source = 'mcp'")
        types = {json.loads(e["body"])["type"] for e in events} | {m["type"] for m in mirrored}
        assert {"mcp.server_created", "mcp.server_deleted"} <= types


async def test_calls_are_checked_audited_and_measured(mcp_app):
    async with mcp_app() as env:
        await env.add(allowed_tools=["get_current_time"])
        await env.started()
        catalog = (await env.client.get("/api/v1/mcp/tools?server=time", headers=ADMIN)).json()["items"]
        assert {t["tool"]: t["allowed"] for t in catalog} == {"convert_time": False, "get_current_time": True}
        only_allowed = (await env.client.get("/api/v1/mcp/tools?allowed=true", headers=ADMIN)).json()["items"]
        assert [t["name"] for t in only_allowed] == ["time.get_current_time"]

        call = "/api/v1/mcp/servers/time/tools/{}/call"
        blocked = await env.client.post(
            call.format("convert_time"),
            json={"arguments": {"source_timezone": "UTC", "time": "10:00", "target_timezone": "UTC"}},
            headers=ADMIN,
        )
        assert blocked.status_code == 403 and blocked.json()["type"] == PROBLEM + "mcp-tool-not-allowed"
        invalid = await env.client.post(
            call.format("get_current_time"), json={"arguments": {"timezone": 5}}, headers=ADMIN
        )
        assert invalid.status_code == 422
        assert invalid.headers["content-type"].startswith("application/problem+json")
        assert invalid.json()["errors"][0]["loc"] == ["arguments", "timezone"]
        unknown = await env.client.post(call.format("launch"), json={"arguments": {}}, headers=ADMIN)
        assert unknown.status_code == 404 and unknown.json()["type"] == PROBLEM + "mcp-tool-not-found"
        viewer = await env.client.post(call.format("get_current_time"), json={"arguments": {}}, headers=VIEWER)
        assert viewer.status_code == 403

        ok = await env.client.post(
            call.format("get_current_time"), json={"arguments": {"timezone": "Asia/Tokyo"}}, headers=ADMIN
        )
        assert ok.status_code == 200 and ok.json()["structured_content"]["timezone"] == "Asia/Tokyo"
        failing = await env.client.post(
            call.format("get_current_time"), json={"arguments": {"timezone": "Mars/Olympus_Mons"}}, headers=ADMIN
        )
        assert failing.status_code == 200 and failing.json()["is_error"] is True

        metrics = env.kernel.metrics
        labels = {"server": "time", "tool": "get_current_time"}
        assert metrics.get_sample_value("taylordash_mcp_tool_calls_total", {**labels, "outcome": "success"}) == 1
        assert metrics.get_sample_value("taylordash_mcp_tool_calls_total", {**labels, "outcome": "tool-error"}) == 1
        assert metrics.get_sample_value("taylordash_mcp_tool_errors_total", labels) == 1
        assert metrics.get_sample_value("taylordash_mcp_tool_call_duration_seconds_count", labels) == 2

        audit = await _rows(
            env.kernel,
            "SELECT outcome, target_id, actor_id FROM auth_audit_log WHERE action = 'mcp.tool_call' ORDER BY id",
        )
        assert [(a["outcome"], a["target_id"]) for a in audit] == [
            ("denied", "time.convert_time"),
            ("success", "time.get_current_time"),
            ("success", "time.get_current_time"),
        ]
        assert {a["actor_id"] for a in audit} == {"test-admin"}

        # the allow list is admin-managed and takes effect at once
        opened = await env.client.put(
            "/api/v1/mcp/servers/time/allowed-tools", json={"allowed_tools": None}, headers=ADMIN
        )
        assert opened.json()["allowed_tools"] is None
        converted = await env.client.post(
            call.format("convert_time"),
            json={"arguments": {"source_timezone": "UTC", "time": "10:00", "target_timezone": "Asia/Kolkata"}},
            headers=ADMIN,
        )
        assert converted.json()["structured_content"]["target"]["datetime"].startswith(
            converted.json()["structured_content"]["source"]["datetime"][:11]
        )
        assert converted.json()["structured_content"]["time_difference"] == "+5.5h"


async def test_stderr_is_logged_with_secrets_masked(mcp_app):
    script = (
        "import os, sys; print('booting with key ' + os.environ['API_KEY'], file=sys.stderr, flush=True); "
        "sys.argv = ['mcp-server-time']; from mcp_server_time import main; main()"
    )
    async with mcp_app() as env:
        await env.add("noisy", command=sys.executable, args=["-c", script], env={"API_KEY": SECRET})
        server = await env.started("noisy")
        assert "booting with key " + MASK in server["stderr_tail"]
        assert SECRET not in json.dumps(server)


async def test_slow_tool_times_out(mcp_app):
    async with mcp_app() as env:
        await env.add("slow", command=sys.executable, args=[SLOW_SERVER], call_timeout_seconds=0.5)
        await env.started("slow")
        call = "/api/v1/mcp/servers/slow/tools/sleep/call"
        quick = await env.client.post(call, json={"arguments": {"seconds": 0.01}}, headers=ADMIN)
        assert quick.status_code == 200 and quick.json()["content"][0]["text"] == "slept 0.01"
        slow = await env.client.post(call, json={"arguments": {"seconds": 5}}, headers=ADMIN)
        assert slow.status_code == 504 and slow.json()["type"] == PROBLEM + "mcp-call-timeout"
        labels = {"server": "slow", "tool": "sleep", "outcome": "timeout"}
        assert env.kernel.metrics.get_sample_value("taylordash_mcp_tool_calls_total", labels) == 1
        assert env.manager.connections["slow"].state == "ready"
