"""One scan: unpack the target, run bandit and our rules, check the manifest, apply suppressions."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from sandbox.scanner.archive import DEFAULT_LIMITS, Limits, UnusableInput, target_kind, unpack
from sandbox.scanner.bandit_runner import known_test_ids, run_bandit
from sandbox.scanner.code_rules import Capability, check_source
from sandbox.scanner.findings import RULES, Finding, Report, Severity, SuppressedFinding, TargetResult
from sandbox.scanner.manifest_rules import check_manifest, check_package, check_suppression_rules
from sandbox.scanner.package import Package, discover, pth_code_lines
from sdk.manifest import PluginManifest

SCANNER_VERSION = "1.0.0"


class Progress(Protocol):
    """Told how much work a target has and how it advances (a rich progress bar on a TTY)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


def _pth_sources(package: Package, scratch: Path) -> dict[Path, str]:
    """Write the executable lines of every ``.pth`` file as a module (same line numbers) so bandit
    and our rules read them like any other code. Returns scratch file -> ``.pth`` path."""
    mapping: dict[Path, str] = {}
    for index, path in enumerate(package.pth_files):
        lines = pth_code_lines(path)
        if not lines:
            continue
        body = [""] * lines[-1][0]
        for number, line in lines:
            body[number - 1] = line
        module = scratch / f"pth_{index}.py"
        module.write_text("\n".join(body) + "\n", encoding="utf-8")
        mapping[module] = package.relative(path)
    return mapping


def _apply_suppressions(
    findings: list[Finding], manifest: PluginManifest | None, manifest_file: str | None
) -> tuple[list[Finding], list[SuppressedFinding]]:
    if manifest is None or not manifest.suppressions:
        return findings, []
    kept: list[Finding] = []
    suppressed: list[SuppressedFinding] = []
    used: set[int] = set()
    for finding in findings:
        rule = RULES.get(finding.rule_id)
        allowed = rule.suppressible if rule is not None else finding.source == "bandit"
        entry = next(
            (i for i, s in enumerate(manifest.suppressions) if allowed and s.covers(finding.rule_id, finding.file)),
            None,
        )
        if entry is None:
            kept.append(finding)
            continue
        used.add(entry)
        suppressed.append(SuppressedFinding(finding, manifest.suppressions[entry].justification))
    for index, entry in enumerate(manifest.suppressions):
        if index not in used and RULES.get(entry.rule, RULES["TD209"]).suppressible:
            where = f" in {entry.path}" if entry.path else ""
            kept.append(
                Finding(
                    "TD209",
                    Severity.LOW,
                    Severity.HIGH,
                    manifest_file or "",
                    None,
                    f"suppression of {entry.rule}{where} matched no finding",
                )
            )
    return kept, suppressed


def scan_package(package: Package, label: str, scratch: Path, progress: Progress | None = None) -> TargetResult:
    """Analyse an already unpacked package."""
    result = TargetResult(target=label, kind=package.kind)
    pth_modules = _pth_sources(package, scratch)
    files = [*package.python_files, *pth_modules]

    def relative(path: Path) -> str:
        return pth_modules.get(path) or package.relative(path)

    if progress is not None:
        progress.start(label, 2 * len(files) + 1)
    findings: list[Finding] = []
    capabilities: list[Capability] = []
    unparsable: dict[str, str] = {}
    for path in files:
        rel = relative(path)
        source = path.read_bytes()
        result.lines_scanned += source.count(b"\n") + (0 if source.endswith(b"\n") or not source else 1)
        checked = check_source(source, rel, is_setup=rel == "setup.py")
        if checked is None:
            unparsable[rel] = "not valid Python (syntax error)"
        else:
            findings += checked.findings
            capabilities += checked.capabilities
        if progress is not None:
            progress.advance(1)
    bandit_findings, skipped = run_bandit(files, relative, progress.advance if progress is not None else None)
    findings += bandit_findings
    for rel, reason in skipped:
        unparsable.setdefault(rel, reason)
    for rel, reason in sorted(unparsable.items()):
        findings.append(Finding("TD114", Severity.MEDIUM, Severity.HIGH, rel, None, f"cannot be analysed: {reason}"))
    result.files_scanned = len(files)
    manifest, manifest_file, manifest_findings = check_manifest(package, capabilities)
    findings += manifest_findings
    findings += check_package(package, manifest)
    if manifest is not None and manifest_file is not None:
        findings += check_suppression_rules(manifest, manifest_file, known_test_ids())
        result.manifest = manifest.model_dump(mode="json")
    result.name = manifest.name if manifest else package.dist_name
    result.version = manifest.version if manifest else package.dist_version
    kept, result.suppressed = _apply_suppressions(findings, manifest, manifest_file)
    result.findings = sorted(kept, key=lambda f: (f.file, f.line or 0, f.rule_id, f.message))
    if progress is not None:
        progress.advance(1)
    return result


def scan_target(target: str | Path, progress: Progress | None = None, limits: Limits = DEFAULT_LIMITS) -> TargetResult:
    """Scan one folder, wheel, sdist or zip. Raises :class:`UnusableInput` when it cannot be read."""
    path = Path(target)
    kind = target_kind(path)
    with tempfile.TemporaryDirectory(prefix="taylordash-scan-") as tmp:
        scratch = Path(tmp) / "scratch"
        scratch.mkdir()
        if kind == "folder":
            root = path
        else:
            root = unpack(path, kind, Path(tmp) / "unpacked", limits)
        try:
            package = discover(root, kind)
            return scan_package(package, str(target), scratch, progress)
        except PermissionError as exc:
            raise UnusableInput(f"{target}: cannot read {exc.filename}: permission denied") from None


def scan(
    targets: Sequence[str | Path],
    fail_on: Severity = Severity.MEDIUM,
    progress: Progress | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Report:
    """Scan every target (all are checked to exist and be of a known kind before any work starts)."""
    if not targets:
        raise UnusableInput("no target given")
    for target in targets:
        target_kind(Path(target))
    started = time.perf_counter()
    results = [scan_target(t, progress, limits) for t in targets]
    return Report(results, fail_on, time.perf_counter() - started, SCANNER_VERSION)
