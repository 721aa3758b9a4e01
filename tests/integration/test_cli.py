"""The ``taylordash`` command line, run as a real subprocess against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.support.cli import clean_env, run, serving
from tests.support.services import free_port


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    environment = clean_env(TD_DATA_DIR=str(tmp_path / "data"), TD_DATABASE_URL=database_url, TD_LOG_LEVEL="warning")
    result = run("db", "upgrade", env=environment)
    assert result.returncode == 0, result.stderr
    return environment


def test_help_lists_every_command(env):
    result = run("--help", env=env)
    assert result.returncode == 0
    for command in ("serve", "db", "plugins", "config", "version"):
        assert f"  {command} " in result.stdout
    serve_help = run("serve", "--help", env=env).stdout
    for option in ("--host", "--port", "--workers", "--migrate"):
        assert option in serve_help


def test_version(env):
    from kernel import __version__

    assert run("version", env=env).stdout.strip() == __version__


def test_plugins_list_json_shows_builtins(env):
    result = run("plugins", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    registry = plugins["plugins"]
    assert registry["builtin"] is True and registry["enabled"] is True
    assert registry["version"]
    assert {"register_routes", "register_permissions"} <= set(registry["hooks"])
    info = json.loads(run("plugins", "info", "plugins", "--json", env=env).stdout)
    assert info["name"] == "plugins"


def test_disable_removes_routes_after_restart_and_enable_restores(env, tmp_path: Path):
    with serving(env, log=tmp_path / "1.log") as base:
        assert httpx.get(base + "/api/v1/plugins").status_code == 401  # route exists, needs a token
    disabled = run("plugins", "disable", "plugins", env=env)
    assert disabled.returncode == 0 and "restart" in disabled.stdout
    listed = {p["name"]: p for p in json.loads(run("plugins", "list", "--json", env=env).stdout)}
    assert listed["plugins"]["enabled"] is False
    with serving(env, log=tmp_path / "2.log") as base:
        assert httpx.get(base + "/api/v1/plugins").status_code == 404
        assert "/api/v1/plugins" not in httpx.get(base + "/openapi.json").json()["paths"]
    assert run("plugins", "enable", "plugins", env=env).returncode == 0
    with serving(env, log=tmp_path / "3.log") as base:
        assert httpx.get(base + "/api/v1/plugins").status_code == 401


def test_unknown_plugin_is_one_line_exit_2(env):
    result = run("plugins", "disable", "nope", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: no plugin named 'nope'")


def test_serve_on_a_fresh_data_dir_migrates_and_becomes_ready(tmp_path: Path):
    """The embedded default needs nothing prepared: the first start creates the data directory and the
    schema. How fast that is gets measured by ``tests/bench/startup.py``, not here."""
    data_dir = tmp_path / "fresh"
    env = clean_env(TD_DATA_DIR=str(data_dir), TD_LOG_LEVEL="warning")
    with serving(env, log=tmp_path / "serve.log") as base:
        assert httpx.get(base + "/health/ready").json()["status"] == "ready"
        assert httpx.get(base + "/api/v1/projects").status_code == 401  # routes mounted, auth enforced
    assert any(data_dir.iterdir())


def test_port_in_use_is_one_line_exit_1(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port), env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: port {port} on 127.0.0.1 is already in use"


def test_bad_settings_exit_2_one_line_each(env):
    result = run("serve", env={**env, "TD_PROT": "8000", "TD_BUS_URL": "amqp://x"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: TD_PROT: unknown setting")
    assert lines[1].startswith("error: TD_BUS_URL: unsupported scheme 'amqp'")


def test_config_show_masks_secrets(env):
    secret_env = {**env, "TD_SECRET_KEY": "very-secret-material", "TD_BUS_URL": "mqtt://td:hunter2@broker:1883"}
    result = run("config", "show", "--json", env=secret_env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["secret_key"] == "**********"
    assert shown["bus_url"] == "mqtt://td:***@broker:1883"
    assert "hunter2" not in result.stdout and "very-secret" not in result.stdout
    text = run("config", "show", env=secret_env).stdout
    assert "TD_BUS_URL=mqtt://td:***@broker:1883" in text


def test_db_commands(env):
    current = json.loads(run("db", "current", "--json", env=env).stdout)
    assert current["pending"] == [] and "kernel_0003" in current["heads"]
    down = run("db", "downgrade", "base", env=env)
    assert down.returncode == 0, down.stderr
    after = json.loads(run("db", "current", "--json", env=env).stdout)
    assert after["current"] == [] and "kernel_0001" in after["pending"]
    assert run("db", "upgrade", env=env).returncode == 0
    assert json.loads(run("db", "current", "--json", env=env).stdout)["pending"] == []


def test_serve_refuses_postgres_schema_behind_head(postgres, tmp_path: Path):
    env = clean_env(TD_DATA_DIR=str(tmp_path / "data"), TD_DATABASE_URL=postgres.create_database())
    result = run("serve", "--port", str(free_port()), env=env)
    assert result.returncode == 1
    assert "behind head" in result.stderr and "--migrate" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(run("db", "current", "--json", env=env).stdout)["current"] == []
    with serving(env, "--migrate", log=tmp_path / "migrate.log") as base:
        assert httpx.get(base + "/health/ready").status_code == 200
    assert json.loads(run("db", "current", "--json", env=env).stdout)["pending"] == []


def test_logs_are_json_lines_with_request_and_trace_ids(env, tmp_path: Path):
    log = tmp_path / "json.log"
    trace = "0af7651916cd43dd8448eb211c80319c"
    with serving({**env, "TD_LOG_LEVEL": "info"}, log=log) as base:
        response = httpx.get(
            base + "/health/live",
            headers={"x-request-id": "abc-123", "traceparent": f"00-{trace}-b7ad6b7169203331-01"},
        )
        assert response.headers["x-request-id"] == "abc-123"
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert records, log.read_text()
    access = [r for r in records if r.get("event") == "request" and r.get("request_id") == "abc-123"]
    assert len(access) == 1 and access[0]["trace_id"] == trace and access[0]["path"] == "/health/live"
    assert access[0]["status"] == 200 and access[0]["level"] == "info"
    assert all("timestamp" in r and "level" in r for r in records)


def test_serve_with_several_workers(env, tmp_path: Path):
    with serving(env, "--workers", "2", log=tmp_path / "workers.log") as base:
        pids = {httpx.get(base + "/health/ready").status_code for _ in range(4)}
    assert pids == {200}
