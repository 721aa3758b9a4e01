"""`taylordash plugins install|enable|disable|config|remove|list` on the registry, as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scanner.builders import SAMPLES, build
from tests.support.cli import clean_env, run

REASON = "reviewed: the native call only reads the process id"


@pytest.fixture
def backend() -> str:
    """The command line is a thin layer over the registry, whose API tests run on both backends;
    each command here starts a whole kernel, so these run on SQLite only."""
    return "sqlite"


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    environment = clean_env(TD_DATA_DIR=str(tmp_path / "data"), TD_DATABASE_URL=database_url, TD_LOG_LEVEL="error")
    result = run("db", "upgrade", env=environment)
    assert result.returncode == 0, result.stderr
    return environment


def test_install_enable_configure_remove(env, tmp_path: Path):
    wheel = build("wheel", SAMPLES / "benign" / "burndown_chart", tmp_path / "pkg")
    installed = run("plugins", "install", str(wheel), "--json", env=env)
    assert installed.returncode == 0, installed.stderr
    record = json.loads(installed.stdout)
    assert record["name"] == "burndown-chart" and record["status"] == "scanned" and record["verdict"] == "pass"
    assert record["scan_report"]["verdict"] == "pass"
    enabled = json.loads(run("plugins", "enable", "burndown-chart", "--json", env=env).stdout)
    assert enabled["status"] == "enabled"
    bad = run("plugins", "config", "burndown-chart", "--set", '{"days": 0}', env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error: the configuration does not match")
    assert "days: 0 is less than the minimum of 1" in bad.stderr and bad.stderr.count("\n") == 1
    configured = run("plugins", "config", "burndown-chart", "--set", '{"days": 9}', "--json", env=env)
    configured = json.loads(configured.stdout)
    assert configured == {"name": "burndown-chart", "config": {"days": 9}, "revision": 1}
    shown = run("plugins", "config", "burndown-chart", env=env)
    assert shown.stdout.strip() == "days = 9"
    listed = {p["name"]: p for p in json.loads(run("plugins", "list", "--json", env=env).stdout)}
    assert listed["burndown-chart"]["source"] == "uploaded" and listed["burndown-chart"]["enabled"] is True
    assert listed["plugins"]["source"] == "builtin"
    text = run("plugins", "list", env=env).stdout
    assert "burndown-chart" in text and "uploaded (scan: pass)" in text
    disabled = run("plugins", "disable", "burndown-chart", env=env)
    assert disabled.stdout.strip() == "burndown-chart disabled"
    removed = json.loads(run("plugins", "remove", "burndown-chart", "--json", env=env).stdout)
    assert removed == {"name": "burndown-chart", "status": "removed"}
    again = run("plugins", "remove", "burndown-chart", env=env)
    assert again.returncode == 2 and again.stderr.startswith("error: no plugin named 'burndown-chart'")


def test_a_failing_plugin_needs_an_override(env, tmp_path: Path):
    sdist = build("sdist", SAMPLES / "malicious" / "native_loader", tmp_path / "pkg")
    installed = run("plugins", "install", str(sdist), env=env)
    assert installed.returncode == 0 and "scan fail" in installed.stdout
    refused = run("plugins", "enable", "native-plugin", env=env)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: plugin 'native-plugin' cannot be enabled: its latest scan failed")
    forced = run("plugins", "enable", "native-plugin", "--override-reason", REASON, "--json", env=env)
    assert json.loads(forced.stdout)["status"] == "enabled"


def test_unusable_packages_are_exit_2(env, tmp_path: Path):
    missing = run("plugins", "install", str(tmp_path / "nope.whl"), env=env)
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    text_file = tmp_path / "notes.txt"
    text_file.write_text("x")
    wrong = run("plugins", "install", str(text_file), env=env)
    assert wrong.returncode == 2 and "is not a wheel" in wrong.stderr
    bad_json = run("plugins", "config", "x", "--set", "{", env=env)
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
