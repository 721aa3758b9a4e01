"""``taylordash mcp …``: registry commands, ``tools``/``call`` running the server in the command, and
``start``/``stop`` reaching a running ``taylordash serve`` through the outbox and the bus."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from kernel.app import Kernel
from kernel.cli import main
from kernel.settings import load_settings
from tests.support.cli import clean_env, run, serving
from tests.support.events import committed_events

SECRET = "sk-cli-0123456789abcdef"
TIME_ARGS = ("--command", sys.executable, "--arg", "-m", "--arg", "mcp_server_time", "--arg", "--local-timezone=UTC")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def env(tmp_path: Path, fresh_database_url: str) -> dict[str, str]:
    environment = clean_env(
        TD_DATA_DIR=str(tmp_path / "data"),
        TD_DATABASE_URL=fresh_database_url,
        TD_LOG_LEVEL="warning",
        TD_SECRET_KEY="cli-test-secret-0123456789abcdef",
        TD_MIGRATE_ON_START="true",
        TD_PLUGINS__MCP__PING_INTERVAL_SECONDS="0.5",
    )
    asyncio.run(_migrate(environment))
    return environment


async def _migrate(env: dict[str, str]) -> None:
    kernel = Kernel(load_settings(data_dir=env["TD_DATA_DIR"], database_url=env["TD_DATABASE_URL"]))
    try:
        await kernel.migrator().upgrade()
    finally:
        await kernel.db.dispose()


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``cli(*args)`` runs ``taylordash args`` through ``kernel.cli.main`` with ``env``'s settings."""
    for name, value in env.items():
        if name.startswith("TD_"):
            monkeypatch.setenv(name, value)

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["taylordash", *args])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


def test_add_list_tools_call(cli):
    added = cli("mcp", "add", "time", *TIME_ARGS, "--env", f"API_KEY={SECRET}", "--allow", "get_current_time")
    assert added.returncode == 0, added.stderr
    listed = cli("mcp", "list", "--json")
    assert listed.returncode == 0 and SECRET not in listed.stdout
    [server] = json.loads(listed.stdout)
    assert server["name"] == "time" and server["env"] == {"API_KEY": "********"} and server["desired"] == "stopped"
    assert "time" in cli("mcp", "list").stdout
    assert SECRET not in cli("mcp", "export").stdout
    assert SECRET in cli("mcp", "export", "--include-secrets").stdout

    tools = cli("mcp", "tools", "time", "--json")
    assert tools.returncode == 0, tools.stderr
    assert {(t["name"], t["allowed"]) for t in json.loads(tools.stdout)} == {
        ("time.get_current_time", True),
        ("time.convert_time", False),
    }

    called = cli("mcp", "call", "time", "get_current_time", "--args", '{"timezone": "Asia/Tokyo"}', "--json")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structured_content"]["timezone"] == "Asia/Tokyo"

    invalid = cli("mcp", "call", "time", "get_current_time", "--args", '{"timezone": 3}')
    assert invalid.returncode == 2 and invalid.stderr.count("\n") == 1 and "timezone" in invalid.stderr
    blocked = cli("mcp", "call", "time", "convert_time", "--args", "{}")
    assert blocked.returncode == 4 and "allow list" in blocked.stderr
    missing = cli("mcp", "call", "nope", "get_current_time")
    assert missing.returncode == 3 and missing.stderr.startswith("error:")
    assert cli("mcp", "add", "bad", "--env", "NOEQUALS", *TIME_ARGS).returncode == 2
    assert cli("mcp", "add", "both", *TIME_ARGS, "--url", "http://x").returncode == 2
    assert cli("mcp", "call", "time", "get_current_time", "--args", "[1]").returncode == 2


async def _events(env: dict[str, str]) -> list[dict]:
    kernel = Kernel(load_settings(data_dir=env["TD_DATA_DIR"], database_url=env["TD_DATABASE_URL"]))
    try:
        return await committed_events(kernel.db.engine, source="mcp")
    finally:
        await kernel.db.dispose()


def _wait_for_event(env: dict[str, str], event_type: str, after: int = 0, seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while True:
        events = asyncio.run(_events(env))
        if [e for e in events[after:] if e["type"] == event_type and e["subject_id"] == "time"]:
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event_type} within {seconds}s: {[e['type'] for e in events]}")
        time.sleep(0.2)


def test_start_and_stop_reach_a_running_server(env, tmp_path):
    assert run("mcp", "add", "time", *TIME_ARGS, env=env).returncode == 0
    with serving(env, log=tmp_path / "serve.log"):
        started = run("mcp", "start", "time", env=env)
        assert started.returncode == 0, started.stderr
        assert asyncio.run(_desired(env)) == "running"
        events = _wait_for_event(env, "mcp.ready")
        ready = next(e for e in events if e["type"] == "mcp.ready")
        pid = ready["payload"]["pid"]
        assert pid and ready["payload"]["tools"] == 2
        stopped = run("mcp", "stop", "time", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert asyncio.run(_desired(env)) == "stopped"
        events = _wait_for_event(env, "mcp.stopped", after=len(events))
        assert [e["payload"]["action"] for e in events if e["type"] == "mcp.control"] == ["start", "stop"]
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_unknown_server_is_exit_3(env):
    result = run("mcp", "start", "ghost", env=env)
    assert result.returncode == 3 and result.stderr.strip().startswith("error:") and "ghost" in result.stderr


async def _desired(env: dict[str, str]) -> str:
    kernel = Kernel(load_settings(data_dir=env["TD_DATA_DIR"], database_url=env["TD_DATABASE_URL"]))
    try:
        async with kernel.db.engine.connect() as conn:
            return (await conn.execute(sa.text("SELECT desired FROM mcp_servers"))).scalar()
    finally:
        await kernel.db.dispose()
