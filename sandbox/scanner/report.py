"""Render a :class:`Report` as text, JSON or SARIF 2.1.0 (for code-scanning upload)."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sandbox.scanner.bandit_runner import test_names
from sandbox.scanner.findings import RULES, Finding, Report, Severity, TargetResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/taylordash/taylordash/blob/main/docs/scanner.md"
LEVELS = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
SECURITY_SEVERITY = {Severity.HIGH: "8.0", Severity.MEDIUM: "5.0", Severity.LOW: "2.0"}
FORMATS = ("text", "json", "sarif")


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt`` (``text``, ``json`` or ``sarif``), ending with a newline."""
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(report), indent=2) + "\n"
    return to_text(report)


# -- text -----------------------------------------------------------------------------------------
def _text_finding(finding: Finding, prefix: str = "") -> str:
    where = f"{finding.file}:{finding.line}" if finding.line else finding.file
    return f"  {prefix}{finding.severity!s:<6} {finding.rule_id:<6} {where}: {finding.message}"


def to_text(report: Report) -> str:
    lines: list[str] = []
    for target in report.targets:
        verdict = target.verdict(report.fail_on).upper()
        name = " ".join(n for n in (target.name, target.version) if n)
        name = f" ({name})" if name else ""
        lines.append(
            f"{target.target}{name}: {verdict} - {len(target.findings)} finding(s), "
            f"{len(target.suppressed)} suppressed, {target.files_scanned} file(s), {target.lines_scanned} line(s)"
        )
        for finding in sorted(target.findings, key=lambda f: (-f.severity, f.file, f.line or 0)):
            lines.append(_text_finding(finding))
        for entry in target.suppressed:
            lines.append(_text_finding(entry.finding, "suppressed "))
            lines.append(f"      justification: {entry.justification}")
    summary = report.summary()
    counts = ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items())
    lines.append(
        f"verdict: {report.verdict} (fail-on {report.fail_on}; {summary['findings']} finding(s): {counts}; "
        f"{summary['suppressed']} suppressed; {summary['duration_seconds']}s)"
    )
    return "\n".join(lines) + "\n"


# -- SARIF ----------------------------------------------------------------------------------------
def _uri(target: TargetResult, file: str) -> str:
    if target.kind != "folder":
        return quote(file, safe="/")
    base = Path(target.target)
    if base.is_absolute():
        return (base / file).as_uri()
    return quote(posixpath.normpath(posixpath.join(base.as_posix(), file)), safe="/")


def _rule_descriptor(rule_id: str, severity: Severity, bandit_names: dict[str, str]) -> dict[str, Any]:
    ours = RULES.get(rule_id)
    name = ours.name if ours else bandit_names.get(rule_id, rule_id)
    text = ours.description if ours else f"bandit test {rule_id} ({name})"
    help_uri = (
        f"{INFORMATION_URI}#{rule_id.lower()}"
        if ours
        else f"https://bandit.readthedocs.io/en/latest/search.html?q={rule_id}"
    )
    level = ours.severity if ours else severity
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": text},
        "fullDescription": {"text": text},
        "helpUri": help_uri,
        "help": {"text": f"{text}. See {help_uri}"},
        "defaultConfiguration": {"level": LEVELS[level]},
        "properties": {
            "tags": ["security", "taylordash" if ours else "bandit"],
            "security-severity": SECURITY_SEVERITY[level],
        },
    }


def _result(target: TargetResult, finding: Finding, index: int, justification: str | None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": _uri(target, finding.file or target.target)}}
    if finding.line:
        location["region"] = {"startLine": finding.line}
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {
            "taylordash/v1": f"{finding.rule_id}:{finding.file}:{finding.code or finding.message}",
        },
        "properties": {
            "severity": str(finding.severity),
            "confidence": str(finding.confidence),
            "source": finding.source,
            "target": target.target,
        },
    }
    if justification is not None:
        result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": justification}]
    return result


def to_sarif(report: Report) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: every finding, suppressed ones marked as such."""
    bandit_names = test_names()
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for target in report.targets:
        pairs = [(f, None) for f in target.findings] + [(s.finding, s.justification) for s in target.suppressed]
        for finding, justification in pairs:
            if finding.rule_id not in index:
                index[finding.rule_id] = len(rules)
                rules.append(_rule_descriptor(finding.rule_id, finding.severity, bandit_names))
            results.append(_result(target, finding, index[finding.rule_id], justification))
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "taylordash-scan",
                        "semanticVersion": report.scanner_version or "1.0.0",
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
                "invocations": [{"executionSuccessful": True}],
                "properties": {"verdict": report.verdict, "summary": report.summary()},
            }
        ],
    }
