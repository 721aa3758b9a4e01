"""Every malicious sample fails and every benign one passes, in every package format."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.scanner import Severity, scan
from tests.scanner.builders import SAMPLES, build

KINDS = ("folder", "wheel", "sdist", "zip")

# sample -> the rules that must catch it
MALICIOUS: dict[str, set[str]] = {
    "obfuscated_exec": {"TD101"},
    "dynamic_import": {"TD102"},
    "builtins_getattr": {"TD103"},
    "download_execute": {"TD104"},
    "env_exfiltration": {"TD105"},
    "setup_cmdclass": {"TD107"},
    "pth_hook": {"TD108"},
    "reverse_shell": {"TD109"},
    "ssh_key_writer": {"TD110"},
    "import_thread": {"TD111"},
    "native_loader": {"TD112"},
    "typosquat": {"TD113"},
    "undeclared_network": {"TD205"},
    "bad_manifest": {"TD203", "TD204"},
    "nosec_evasion": {"B602", "B605"},
    "forbidden_suppression": {"TD101", "TD207"},
    "no_manifest": {"TD201"},
}
BENIGN = ("kanban_panel", "velocity_tool", "webhook_relay", "burndown_chart", "cache_keys", "sticky_notes")
# A wheel carries no setup.py: what setup.py does at install time cannot be in one.
NOT_IN_WHEELS = {"setup_cmdclass"}


def test_the_sample_sets_are_complete():
    assert sorted(p.name for p in (SAMPLES / "malicious").iterdir()) == sorted(MALICIOUS)
    assert sorted(p.name for p in (SAMPLES / "benign").iterdir()) == sorted(BENIGN)
    assert len(MALICIOUS) >= 10 and len(BENIGN) >= 6


@pytest.mark.parametrize(
    ("sample", "kind"),
    [(s, k) for s in sorted(MALICIOUS) for k in KINDS if not (k == "wheel" and s in NOT_IN_WHEELS)],
)
def test_malicious_sample_fails(sample: str, kind: str, tmp_path: Path):
    target = build(kind, SAMPLES / "malicious" / sample, tmp_path)
    report = scan([target])
    result = report.targets[0]
    failing = {f.rule_id for f in result.failing(Severity.MEDIUM)}
    assert report.verdict == "fail"
    assert MALICIOUS[sample] <= failing, [f.as_dict() for f in result.findings]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sample", BENIGN)
def test_benign_sample_passes(sample: str, kind: str, tmp_path: Path):
    target = build(kind, SAMPLES / "benign" / sample, tmp_path)
    report = scan([target])
    result = report.targets[0]
    assert report.verdict == "pass", [f.as_dict() for f in result.findings]
    assert result.failing(Severity.MEDIUM) == []
    assert result.manifest is not None and result.manifest["name"] == sample.replace("_", "-")
    assert result.files_scanned >= 1


def test_wheel_without_setup_py_has_no_install_hook(tmp_path: Path):
    wheel = build("wheel", SAMPLES / "malicious" / "setup_cmdclass", tmp_path)
    result = scan([wheel]).targets[0]
    assert "TD107" not in {f.rule_id for f in result.findings}


def test_suppression_is_reported_with_its_justification(tmp_path: Path):
    wheel = build("wheel", SAMPLES / "benign" / "cache_keys", tmp_path)
    result = scan([wheel]).targets[0]
    assert [s.finding.rule_id for s in result.suppressed] == ["B324"]
    assert result.suppressed[0].justification.startswith("sha1 only names cache entries")
    assert result.suppressed[0].finding.file == "cache_keys/__init__.py"


def test_nosec_comments_are_ignored(tmp_path: Path):
    result = scan([SAMPLES / "malicious" / "nosec_evasion"]).targets[0]
    source = (SAMPLES / "malicious" / "nosec_evasion" / "quiet_plugin" / "__init__.py").read_text().splitlines()
    lines = {f.rule_id: source[f.line - 1] for f in result.findings if f.line}
    assert lines["B605"].strip().startswith("os.system(command)  # nosec")
    assert lines["B602"].strip().startswith("return subprocess.call(command, shell=True)  # nosec")


def test_a_forbidden_suppression_suppresses_nothing():
    result = scan([SAMPLES / "malicious" / "forbidden_suppression"]).targets[0]
    assert result.suppressed == []
    refused = [f for f in result.findings if f.rule_id == "TD207"]
    assert refused and "cannot be suppressed" in refused[0].message


def test_findings_point_at_the_offending_line():
    result = scan([SAMPLES / "malicious" / "reverse_shell"]).targets[0]
    shell = next(f for f in result.findings if f.rule_id == "TD109")
    assert shell.file == "remote_plugin/__init__.py"
    assert shell.code.startswith("os.dup2(")
    assert shell.source == "taylordash"
