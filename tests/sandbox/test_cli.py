"""``taylordash sandbox run``, run as a real subprocess: the report and the exit codes of the contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sandbox.conftest import ESCAPES
from tests.support.cli import clean_env, run


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(TD_DATA_DIR=str(tmp_path / "data"), TD_LOG_LEVEL="warning")


def snippet(tmp_path: Path, source: str) -> str:
    path = tmp_path / "snippet.py"
    path.write_text(source)
    return str(path)


def test_ok_prints_the_result_as_json(env, tmp_path: Path):
    source = "import statistics\nprint('mean of three')\nresult = {'mean': statistics.mean([1, 2, 6])}\n"
    done = run("sandbox", "run", snippet(tmp_path, source), "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) >= {"status", "result", "violations", "stdout", "duration_ms"}
    assert report["status"] == "ok" and report["result"] == {"mean": 3}
    assert report["stdout"] == "mean of three\n" and report["violations"] == []
    assert report["duration_ms"] > 0


def test_an_error_exits_1(env, tmp_path: Path):
    done = run("sandbox", "run", snippet(tmp_path, "result = {}['missing']\n"), "--json", env=env)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["status"] == "error" and report["error"]["type"] == "KeyError" and report["violations"] == []


def test_blocked_exits_3(env):
    done = run("sandbox", "run", str(ESCAPES / "import_subprocess.py"), "--json", env=env)
    assert done.returncode == 3
    report = json.loads(done.stdout)
    assert report["status"] == "blocked"
    detail = "import of 'subprocess' is not allowed in the sandbox"
    assert report["violations"][0] == {"kind": "import", "detail": detail}


def test_contained_exits_4_and_respects_the_limits(env):
    done = run("sandbox", "run", str(ESCAPES / "memory_bomb.py"), "--json", "--memory-mb", "128", env=env)
    assert done.returncode == 4
    report = json.loads(done.stdout)
    assert report["status"] == "contained" and report["violations"][0]["kind"] == "memory"
    assert "128 MB" in report["violations"][0]["detail"]
    slow = run("sandbox", "run", str(ESCAPES / "cpu_big_power.py"), "--json", "--timeout", "1", env=env)
    assert slow.returncode == 4
    assert json.loads(slow.stdout)["violations"][0]["kind"] in ("timeout", "cpu")


def test_permission_grants_the_api(env, tmp_path: Path):
    source = "api.kv.set('n', 41)\nresult = api.kv.get('n') + 1\n"
    refused = run("sandbox", "run", snippet(tmp_path, source), "--json", env=env)
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["violations"][0]["kind"] == "permission"
    granted = run("sandbox", "run", snippet(tmp_path, source), "--json", "--permission", "storage:kv", env=env)
    assert granted.returncode == 0, granted.stdout
    assert json.loads(granted.stdout)["result"] == 42


def test_text_output_and_help(env, tmp_path: Path):
    done = run("sandbox", "run", str(ESCAPES / "open_file.py"), env=env)
    assert done.returncode == 3
    assert done.stdout.startswith("status: blocked")
    assert "violation: builtin: the builtin open() is not available in the sandbox" in done.stdout
    helped = run("sandbox", "run", "--help", env=env)
    for word in ("--json", "--timeout", "--memory-mb", "--permission", "0 ok", "3 blocked", "4 contained"):
        assert word in helped.stdout


def test_a_missing_file_is_bad_usage(env, tmp_path: Path):
    done = run("sandbox", "run", str(tmp_path / "nope.py"), env=env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error:")
