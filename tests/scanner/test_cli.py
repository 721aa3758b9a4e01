"""The `taylordash scan` contract: exit codes, formats, --fail-on, --output, progress only on a TTY."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from tests.scanner.builders import SAMPLES, build
from tests.scanner.conftest import TAYLORDASH

BENIGN = SAMPLES / "benign"
MALICIOUS = SAMPLES / "malicious"


def test_exit_0_on_a_clean_plugin(run_scan):
    done = run_scan(BENIGN / "velocity_tool")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "PASS" in done.stdout and done.stdout.rstrip().splitlines()[-1].startswith("verdict: pass")


def test_exit_1_on_a_finding_at_or_above_fail_on(run_scan, tmp_path: Path):
    wheel = build("wheel", MALICIOUS / "obfuscated_exec", tmp_path)
    done = run_scan(wheel)
    assert done.returncode == 1
    assert done.stderr == ""
    assert "TD101" in done.stdout and "FAIL" in done.stdout


def test_fail_on_moves_the_threshold(run_scan):
    notes = BENIGN / "sticky_notes"  # only a low-severity finding (an assert)
    assert run_scan(notes).returncode == 0
    assert run_scan(notes, "--fail-on", "low").returncode == 1
    native = MALICIOUS / "native_loader"  # medium findings only
    assert run_scan(native, "--fail-on", "high").returncode == 0
    assert run_scan(native, "--fail-on", "medium").returncode == 1


def test_several_targets_fail_when_one_fails(run_scan):
    done = run_scan(BENIGN / "kanban_panel", MALICIOUS / "import_thread", "--format", "json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert [t["verdict"] for t in report["targets"]] == ["pass", "fail"]
    assert report["verdict"] == "fail"


def test_exit_2_with_one_error_line_for_unusable_input(run_scan, tmp_path: Path):
    corrupt = tmp_path / "broken.whl"
    corrupt.write_bytes(b"PK\x03\x04 this is not a zip")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    for target, expected in [
        (tmp_path / "missing", "no such file or directory"),
        (text_file, "not a folder, wheel"),
        (corrupt, "not a readable zip archive"),
    ]:
        done = run_scan(target)
        assert done.returncode == 2, (target, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], done.stderr


def test_an_unusable_target_among_good_ones_is_still_exit_2(run_scan, tmp_path: Path):
    done = run_scan(BENIGN / "kanban_panel", tmp_path / "missing.whl")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1


def test_bad_usage_is_exit_2(run_scan):
    assert run_scan().returncode == 2
    assert run_scan(BENIGN / "kanban_panel", "--format", "xml").returncode == 2
    assert run_scan(BENIGN / "kanban_panel", "--fail-on", "critical").returncode == 2


def test_output_file(run_scan, tmp_path: Path):
    out = tmp_path / "report.sarif"
    done = run_scan(MALICIOUS / "reverse_shell", "--format", "sarif", "--output", out)
    assert done.returncode == 1
    assert done.stdout == "" and done.stderr == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_json_contract(run_scan, tmp_path: Path):
    sdist = build("sdist", BENIGN / "cache_keys", tmp_path)
    done = run_scan(sdist, MALICIOUS / "env_exfiltration", "--format", "json")
    report = json.loads(done.stdout)
    assert set(report) == {"verdict", "targets", "summary"}
    assert report["verdict"] == "fail"
    first, second = report["targets"]
    assert first["target"] == str(sdist) and first["kind"] == "sdist" and first["verdict"] == "pass"
    assert second["kind"] == "folder" and second["verdict"] == "fail"
    for target in report["targets"]:
        assert {"target", "verdict", "findings"} <= set(target)
        for finding in target["findings"] + target["suppressed"]:
            assert {"rule_id", "severity", "confidence", "file", "line", "message", "source"} <= set(finding)
            assert finding["severity"] in ("low", "medium", "high")
            assert finding["confidence"] in ("low", "medium", "high")
            assert finding["source"] in ("bandit", "taylordash")
            assert finding["line"] is None or finding["line"] >= 1
    suppressed = first["suppressed"][0]
    assert suppressed["rule_id"] == "B324" and "justification" in suppressed
    exfil = next(f for f in second["findings"] if f["rule_id"] == "TD105")
    source = (MALICIOUS / "env_exfiltration" / "telemetry_plugin" / "__init__.py").read_text().splitlines()
    assert exfil["file"] == "telemetry_plugin/__init__.py"
    assert "dict(os.environ)" in source[exfil["line"] - 1]
    summary = report["summary"]
    assert summary["targets"] == 2 and summary["failed_targets"] == 1 and summary["suppressed"] == 1
    assert summary["fail_on"] == "medium"
    assert summary["findings"] == sum(len(t["findings"]) for t in report["targets"])
    assert sum(summary["by_severity"].values()) == summary["findings"]


def test_progress_bar_only_on_a_tty():
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [TAYLORDASH, "scan", str(BENIGN / "velocity_tool"), "--format", "json"],
            stdout=subprocess.PIPE,
            stderr=secondary,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
            timeout=120,
            check=False,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary != -1:
            os.close(secondary)
    assert done.returncode == 0
    json.loads(done.stdout)  # the report itself is untouched by the progress bar
    assert b"scanning" in b"".join(chunks)
