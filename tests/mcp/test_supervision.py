"""The real ``mcp-server-time`` from PyPI under supervision: added through the API, started, healthy,
its tools listed and called; killed from outside, detected, restarted, healthy again; every state
change an event."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import datetime

import psutil
import sqlalchemy as sa

from tests.events.helpers import eventually
from tests.mcp.conftest import ADMIN, VIEWER
from tests.support.events import committed_events


async def _transitions(engine, name: str) -> list[tuple[str, str]]:
    events = await committed_events(engine, source="mcp")
    return [
        (e["payload"]["previous"], e["type"].removeprefix("mcp."))
        for e in events
        if e["subject_id"] == name and "previous" in e["payload"]
    ]


async def _wait_transitions(engine, name: str, count: int) -> list[tuple[str, str]]:
    async def enough():
        found = await _transitions(engine, name)
        return found if len(found) >= count else None

    return await eventually(enough, seconds=30)


async def test_time_server_lifecycle(mcp_app):
    # a generous ping timeout: on a loaded machine a slow ping must not add a degraded blip to the sequence
    async with mcp_app(ping_timeout_seconds=15) as env:
        created = await env.add(env={"TZ_HINT": "not-a-secret-really"})
        assert created["state"] == "stopped" and created["transport"] == "stdio"

        server = await env.started()
        assert server["state"] == "ready"
        assert env.kernel.metrics.get_sample_value("taylordash_mcp_servers", {"state": "ready"}) == 1
        assert server["server_info"]["name"] == "mcp-time"
        pid = server["pid"]
        child = psutil.Process(pid)
        assert child.ppid() == os.getpid()
        assert os.getpgid(pid) == pid  # its own process group: stop signals reach its children too
        # only the SDK's minimal environment plus the configured env reach the child
        environ = child.environ()
        assert environ["TZ_HINT"] == "not-a-secret-really"
        assert not any(name.startswith("TD_") for name in environ)

        tools = (await env.client.get("/api/v1/mcp/tools", headers=VIEWER)).json()["items"]
        by_name = {t["name"]: t for t in tools}
        assert {"time.get_current_time", "time.convert_time"} <= set(by_name)
        assert by_name["time.convert_time"]["server"] == "time"
        assert "timezone" in by_name["time.get_current_time"]["input_schema"]["properties"]

        called = await env.client.post(
            "/api/v1/mcp/servers/time/tools/convert_time/call",
            json={"arguments": {"source_timezone": "UTC", "time": "12:30", "target_timezone": "Asia/Tokyo"}},
            headers=ADMIN,
        )
        assert called.status_code == 200, called.text
        result = called.json()
        assert result["is_error"] is False
        converted = result["structured_content"]
        assert converted["source"]["timezone"] == "UTC"
        assert converted["target"]["timezone"] == "Asia/Tokyo"
        assert datetime.fromisoformat(converted["target"]["datetime"]).strftime("%H:%M") == "21:30"
        assert converted["time_difference"] == "+9.0h"

        now = await env.client.post(
            "/api/v1/mcp/servers/time/tools/get_current_time/call",
            json={"arguments": {"timezone": "America/New_York"}},
            headers=ADMIN,
        )
        assert now.json()["structured_content"]["timezone"] == "America/New_York"
        offset = datetime.fromisoformat(now.json()["structured_content"]["datetime"]).utcoffset()
        assert offset is not None and offset.total_seconds() in (-5 * 3600, -4 * 3600)

        # killed from outside: detected, restarted, ready again with a new process
        os.kill(pid, signal.SIGKILL)
        assert await env.state("time", {"failed"}) == "failed"
        assert await env.state("time", {"ready"}) == "ready"
        again = (await env.client.get("/api/v1/mcp/servers/time", headers=ADMIN)).json()
        assert again["pid"] not in (None, pid) and again["restarts"] == 1
        assert "exited" in again["last_error"]
        retried = await env.client.post(
            "/api/v1/mcp/servers/time/tools/get_current_time/call",
            json={"arguments": {"timezone": "Europe/Paris"}},
            headers=ADMIN,
        )
        assert retried.status_code == 200 and retried.json()["structured_content"]["timezone"] == "Europe/Paris"

        stopped = await env.client.post("/api/v1/mcp/servers/time/stop", headers=ADMIN)
        assert stopped.json()["state"] == "stopped"
        gauge = {
            state: env.kernel.metrics.get_sample_value("taylordash_mcp_servers", {"state": state})
            for state in ("ready", "stopped")
        }
        assert gauge == {"ready": 0, "stopped": 1}
        assert not psutil.pid_exists(again["pid"]) or psutil.Process(again["pid"]).status() == psutil.STATUS_ZOMBIE

        transitions = await _wait_transitions(env.kernel.db.engine, "time", 6)
        assert transitions == [
            ("stopped", "starting"),
            ("starting", "ready"),
            ("ready", "failed"),
            ("failed", "starting"),
            ("starting", "ready"),
            ("ready", "stopped"),
        ]
        events = [e for e in await committed_events(env.kernel.db.engine, source="mcp") if e["type"] == "mcp.failed"]
        assert events[0]["topic"] == "tracker/events/mcp/failed"
        assert "exited" in events[0]["payload"]["reason"] and events[0]["payload"]["retry_in_seconds"] > 0


async def test_autostart_and_clean_shutdown(mcp_app):
    async with mcp_app() as env:
        await env.add()
        server = await env.started()
        first_pid = server["pid"]
    # the kernel stopped: its child is gone
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
    async with mcp_app() as env:
        # desired "running" survives the restart: the server comes up on its own
        async def connected():
            return "time" in env.manager.connections

        await eventually(connected, seconds=60)
        assert await env.state("time", {"ready", "failed"}) == "ready"
        stopped = await env.client.post("/api/v1/mcp/servers/time/stop", headers=ADMIN)
        assert stopped.status_code == 200
    async with mcp_app() as env:
        await asyncio.sleep(0.5)
        assert "time" not in env.manager.connections  # an admin's stop outlives restarts
        async with env.kernel.db.engine.connect() as conn:
            desired = (await conn.execute(sa.text("SELECT desired FROM mcp_servers WHERE name = 'time'"))).scalar()
        assert desired == "stopped"


async def test_unanswered_pings_degrade_then_restart(mcp_app):
    """A frozen child (SIGSTOP) answers no ping: degraded, ready again once it thaws; frozen for good,
    it is replaced."""
    async with mcp_app(ping_timeout_seconds=2.0, failures_before_restart=3) as env:
        await env.add()
        pid = (await env.started())["pid"]
        os.kill(pid, signal.SIGSTOP)
        assert await env.state("time", {"degraded"}) == "degraded"
        os.kill(pid, signal.SIGCONT)
        assert await env.state("time", {"ready"}) == "ready"
        assert env.manager.connections["time"].pid == pid  # the same process recovered

        os.kill(pid, signal.SIGSTOP)
        assert await env.state("time", {"failed"}) == "failed"
        assert "ping failed (3 in a row)" in env.manager.connections["time"].last_error
        assert await env.state("time", {"ready"}) == "ready"
        assert env.manager.connections["time"].pid not in (None, pid)
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

        transitions = await _wait_transitions(env.kernel.db.engine, "time", 7)
        assert transitions[:7] == [
            ("stopped", "starting"),
            ("starting", "ready"),
            ("ready", "degraded"),
            ("degraded", "ready"),
            ("ready", "degraded"),
            ("degraded", "failed"),
            ("failed", "starting"),
        ]
