"""``taylordash plugin new``: the package it writes passes ``taylordash scan`` and its own tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.cli import clean_env, run


def test_new_plugin_scans_clean_and_its_tests_pass(tmp_path: Path):
    env = clean_env(TD_DATA_DIR=str(tmp_path / "data"))
    created = run("plugin", "new", "standup-notes", "--directory", str(tmp_path), env=env)
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "standup-notes"
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == {
        "README.md",
        "standup_notes/__init__.py",
        "standup_notes/taylordash-plugin.toml",
        "tests/test_standup_notes.py",
    }
    scanned = run("scan", str(folder), "--format", "json", env=env)
    assert scanned.returncode == 0, scanned.stdout
    report = json.loads(scanned.stdout)
    assert report["verdict"] == "pass"
    assert all(f["suppressed"] for t in report["targets"] for f in t["findings"])
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=folder, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path):
    env = clean_env(TD_DATA_DIR=str(tmp_path / "data"))
    bad = run("plugin", "new", "Bad Name", "--directory", str(tmp_path), env=env)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
    assert run("plugin", "new", "twice-made", "--directory", str(tmp_path), env=env).returncode == 0
    again = run("plugin", "new", "twice-made", "--directory", str(tmp_path), env=env)
    assert again.returncode == 2 and "already exists" in again.stderr
