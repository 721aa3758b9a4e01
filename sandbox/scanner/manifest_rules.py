"""Manifest rules (TD2xx) and the package-level ones: typosquatting, compiled code, ``.pth`` files."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from sandbox.scanner.code_rules import Capability
from sandbox.scanner.findings import RULES, Finding, Severity
from sandbox.scanner.package import Package, pth_code_lines
from sandbox.scanner.typosquat import lookalike, normalise, shadows
from sdk.manifest import (
    API_VERSION,
    MANIFEST_FILE,
    PARAMETERIZED_PERMISSIONS,
    ManifestError,
    PluginManifest,
)

H, M, L = Severity.HIGH, Severity.MEDIUM, Severity.LOW
_TOML_LINE = re.compile(r"\(at line (\d+)")


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _entry_exists(package: Package, entry: str, manifest_dir: Path) -> bool:
    relative = Path(*entry.split("."))
    bases = {package.root, package.root / "src", manifest_dir, manifest_dir.parent}
    return any((b / relative).with_suffix(".py").is_file() or (b / relative / "__init__.py").is_file() for b in bases)


def _manifest_capabilities(manifest: PluginManifest, file: str) -> list[Capability]:
    needs = []
    if manifest.contributions.routes:
        needs.append(Capability("http:route", file, 0))
    if manifest.contributions.panels:
        needs.append(Capability("dashboard:panel", file, 0))
    needs += [Capability(f"events:subscribe:{t}", file, 0) for t in manifest.contributions.event_subscriptions]
    return needs


def _granted(manifest: PluginManifest, permission: str) -> bool:
    area_action = ":".join(permission.split(":", 2)[:2])
    if area_action in PARAMETERIZED_PERMISSIONS and (permission == area_action or permission.endswith(":#")):
        return any(p == area_action or p.startswith(area_action + ":") for p in manifest.permissions)
    return manifest.grants(permission)


def check_manifest(
    package: Package, capabilities: Iterable[Capability]
) -> tuple[PluginManifest | None, str | None, list[Finding]]:
    """Validate the manifest and compare it with what the code does. Returns the manifest (or
    ``None``), its package-relative path, and the findings."""
    if package.manifest_path is None:
        where = package.dist_name or package.root.name
        return None, None, [Finding("TD201", H, H, MANIFEST_FILE, None, f"{where} has no {MANIFEST_FILE}")]
    file = package.relative(package.manifest_path)
    findings = [
        Finding("TD202", M, H, package.relative(extra), None, f"a second manifest; {file} is the one used")
        for extra in package.extra_manifests
    ]
    text = package.manifest_path.read_text("utf-8", "replace")
    try:
        manifest = PluginManifest.parse(text)
    except ManifestError as exc:
        for problem in exc.problems:
            match = _TOML_LINE.search(problem)
            line = int(match.group(1)) if match else _line_of(text, problem.split(":", 1)[0].split(".")[0] + " ")
            findings.append(Finding("TD202", H, H, file, line, f"invalid manifest: {problem}"))
        return None, file, findings
    for permission in manifest.unknown_permissions():
        findings.append(Finding("TD203", M, H, file, _line_of(text, permission), f"unknown permission {permission!r}"))
    if not manifest.is_compatible():
        findings.append(
            Finding(
                "TD204",
                H,
                H,
                file,
                _line_of(text, "api_version"),
                f"api_version {manifest.api_version!r} is not compatible with this kernel's {API_VERSION}",
            )
        )
    if not _entry_exists(package, manifest.entry, package.manifest_path.parent):
        findings.append(
            Finding(
                "TD206", M, H, file, _line_of(text, "entry"), f"entry module {manifest.entry!r} is not in the package"
            )
        )
    if manifest.contributions.config_schema is not None:
        try:
            Draft202012Validator.check_schema(manifest.contributions.config_schema)
        except SchemaError as exc:
            findings.append(
                Finding("TD202", H, H, file, _line_of(text, "config_schema"), f"config_schema: {exc.message}")
            )
    own = f"tracker/events/{manifest.name}/"
    for permission in manifest.permissions:
        if permission.startswith("events:publish:") and not permission.removeprefix("events:publish:").startswith(own):
            findings.append(
                Finding("TD208", M, H, file, _line_of(text, permission), f"{permission!r} publishes outside {own}")
            )
    reported: set[tuple[str, str]] = set()
    for need in [*capabilities, *_manifest_capabilities(manifest, file)]:
        if (need.permission, need.file) in reported or _granted(manifest, need.permission):
            continue
        reported.add((need.permission, need.file))
        findings.append(
            Finding(
                "TD205",
                M,
                H,
                need.file,
                need.line or None,
                f"needs the permission {need.permission!r}, which the manifest does not declare",
            )
        )
    return manifest, file, findings


def check_package(package: Package, manifest: PluginManifest | None) -> list[Finding]:
    """Typosquatted names, compiled code and ``.pth`` files that run code."""
    findings: list[Finding] = []
    names = {n for n in (package.dist_name, manifest.name if manifest else None) if n}
    for name in sorted(names):
        twin = lookalike(name)
        if twin:
            findings.append(Finding("TD113", H, M, MANIFEST_FILE, None, f"the name {name!r} imitates {twin!r}"))
        elif shadows(name):
            findings.append(
                Finding("TD113", M, H, MANIFEST_FILE, None, f"the name {name!r} is taken by a PyPI package")
            )
    for requirement in package.requirements:
        twin = lookalike(requirement)
        if twin and normalise(requirement) not in {normalise(n) for n in names}:
            findings.append(
                Finding("TD113", H, H, MANIFEST_FILE, None, f"depends on {requirement!r}, which imitates {twin!r}")
            )
    for path in package.compiled_files:
        findings.append(
            Finding("TD115", M, H, package.relative(path), None, "compiled code that cannot be reviewed or scanned")
        )
    for path in package.pth_files:
        for number, line in pth_code_lines(path):
            findings.append(
                Finding("TD108", H, H, package.relative(path), number, "runs at every interpreter start", code=line)
            )
    return findings


def check_suppression_rules(manifest: PluginManifest, file: str, bandit_ids: set[str]) -> list[Finding]:
    """Suppressions that name unknown rules, or rules no manifest may suppress."""
    findings = []
    for entry in manifest.suppressions:
        rule = RULES.get(entry.rule)
        if rule is None and entry.rule not in bandit_ids:
            findings.append(Finding("TD207", M, H, file, None, f"suppression of unknown rule {entry.rule!r}"))
        elif rule is not None and not rule.suppressible:
            findings.append(
                Finding("TD207", M, H, file, None, f"{entry.rule} ({rule.name}) cannot be suppressed by a manifest")
            )
    return findings
