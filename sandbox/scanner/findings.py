"""What a scan produces: findings, per-target results, the report, and the catalogue of our rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    """Severity or confidence of a finding; ordered so that ``HIGH > MEDIUM > LOW``."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, value: str) -> Severity:
        return cls[value.upper()]

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in one place. ``source`` names the analyser: ``bandit`` or ``taylordash``.
    ``file`` is relative to the package root (POSIX separators); ``line`` is ``None`` for findings
    about the package as a whole."""

    rule_id: str
    severity: Severity
    confidence: Severity
    file: str
    line: int | None
    message: str
    source: str = "taylordash"
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": str(self.severity),
            "confidence": str(self.confidence),
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "source": self.source,
            "code": self.code,
        }


@dataclass(frozen=True, slots=True)
class SuppressedFinding:
    """A finding the plugin's manifest accepted, with the reason it gives."""

    finding: Finding
    justification: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.finding.as_dict(), "justification": self.justification}


@dataclass(slots=True)
class TargetResult:
    """The scan of one target (a folder, wheel, sdist or zip)."""

    target: str
    kind: str
    name: str | None = None
    version: str | None = None
    files_scanned: int = 0
    lines_scanned: int = 0
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[SuppressedFinding] = field(default_factory=list)
    manifest: dict[str, Any] | None = None

    def failing(self, fail_on: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity >= fail_on]

    def verdict(self, fail_on: Severity) -> str:
        return "fail" if self.failing(fail_on) else "pass"

    def as_dict(self, fail_on: Severity) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "verdict": self.verdict(fail_on),
            "files_scanned": self.files_scanned,
            "lines_scanned": self.lines_scanned,
            "findings": [f.as_dict() for f in self.findings],
            "suppressed": [s.as_dict() for s in self.suppressed],
            "manifest": self.manifest,
        }


@dataclass(slots=True)
class Report:
    """Every target's result and the overall verdict at the ``fail_on`` threshold."""

    targets: list[TargetResult]
    fail_on: Severity = Severity.MEDIUM
    duration_seconds: float = 0.0
    scanner_version: str = ""

    @property
    def verdict(self) -> str:
        return "fail" if any(t.verdict(self.fail_on) == "fail" for t in self.targets) else "pass"

    def summary(self) -> dict[str, Any]:
        findings = [f for t in self.targets for f in t.findings]
        return {
            "targets": len(self.targets),
            "failed_targets": sum(t.verdict(self.fail_on) == "fail" for t in self.targets),
            "findings": len(findings),
            "by_severity": {str(s): sum(f.severity == s for f in findings) for s in reversed(Severity)},
            "suppressed": sum(len(t.suppressed) for t in self.targets),
            "files_scanned": sum(t.files_scanned for t in self.targets),
            "lines_scanned": sum(t.lines_scanned for t in self.targets),
            "fail_on": str(self.fail_on),
            "duration_seconds": round(self.duration_seconds, 3),
            "scanner_version": self.scanner_version,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "targets": [t.as_dict(self.fail_on) for t in self.targets],
            "summary": self.summary(),
        }


@dataclass(frozen=True, slots=True)
class Rule:
    """One of our rules: its id, short name, default severity and whether a manifest may suppress it."""

    id: str
    name: str
    severity: Severity
    description: str
    suppressible: bool = False


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule("TD101", "obfuscated-exec", Severity.HIGH, "exec/eval/compile of a decoded or decompressed payload"),
        Rule("TD102", "dynamic-import", Severity.MEDIUM, "a module imported by a name computed at run time"),
        Rule("TD103", "builtins-access", Severity.HIGH, "builtins reached by getattr or a dictionary lookup"),
        Rule("TD104", "download-execute", Severity.HIGH, "code or a program fetched from the network and run"),
        Rule("TD105", "credential-exfiltration", Severity.HIGH, "environment or credentials sent over the network"),
        Rule("TD106", "credential-read", Severity.MEDIUM, "reads credential files of the user or the system"),
        Rule("TD107", "install-time-exec", Severity.HIGH, "setup.py runs commands or code when installed"),
        Rule("TD108", "pth-exec", Severity.HIGH, "a .pth file runs code at every interpreter start"),
        Rule("TD109", "reverse-shell", Severity.HIGH, "a socket wired to a shell or process"),
        Rule("TD110", "home-write", Severity.HIGH, "writes into the home directory (ssh keys, shell rc files)"),
        Rule("TD111", "import-time-concurrency", Severity.MEDIUM, "a thread or process started at import"),
        Rule("TD112", "native-code", Severity.MEDIUM, "loads native code through ctypes or cffi"),
        Rule("TD113", "typosquat", Severity.HIGH, "a name one typo away from a popular PyPI package"),
        Rule("TD114", "unparsable-file", Severity.MEDIUM, "a Python file the scanner cannot parse", True),
        Rule("TD115", "compiled-code", Severity.MEDIUM, "ships compiled code the scanner cannot read", True),
        Rule("TD201", "manifest-missing", Severity.HIGH, "no taylordash-plugin.toml in the package"),
        Rule("TD202", "manifest-invalid", Severity.HIGH, "the manifest is not valid TOML or misses fields"),
        Rule("TD203", "unknown-permission", Severity.MEDIUM, "the manifest asks for a permission that does not exist"),
        Rule("TD204", "api-incompatible", Severity.HIGH, "the manifest's api_version is not offered by this kernel"),
        Rule("TD205", "undeclared-capability", Severity.MEDIUM, "the code uses a capability it did not declare"),
        Rule("TD206", "entry-missing", Severity.MEDIUM, "the manifest's entry module is not in the package"),
        Rule("TD207", "suppression-refused", Severity.MEDIUM, "a suppression of a rule that cannot be suppressed"),
        Rule("TD208", "foreign-topic", Severity.MEDIUM, "publishes outside tracker/events/<plugin name>/"),
        Rule("TD209", "unused-suppression", Severity.LOW, "a suppression that matched no finding", True),
    )
}
