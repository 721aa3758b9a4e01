"""The plugin scanner: bandit plus our rules for malicious packages, manifest checks, and reports in
text, JSON and SARIF. ``taylordash scan`` is its command line; the registry calls :func:`scan_async`.

    from sandbox.scanner import scan
    report = scan(["dist/hello-1.0-py3-none-any.whl"])
    report.verdict  # "pass" | "fail"

Names are imported on first use, so that importing a submodule (``sandbox.scanner.pool``) does not
load bandit in processes that only hand scans to a worker.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Limits": "sandbox.scanner.archive",
    "UnusableInput": "sandbox.scanner.errors",
    "SCANNER_VERSION": "sandbox.scanner.engine",
    "scan": "sandbox.scanner.engine",
    "scan_target": "sandbox.scanner.engine",
    "RULES": "sandbox.scanner.findings",
    "Finding": "sandbox.scanner.findings",
    "Report": "sandbox.scanner.findings",
    "Rule": "sandbox.scanner.findings",
    "Severity": "sandbox.scanner.findings",
    "SuppressedFinding": "sandbox.scanner.findings",
    "TargetResult": "sandbox.scanner.findings",
    "scan_async": "sandbox.scanner.pool",
    "render": "sandbox.scanner.report",
    "to_sarif": "sandbox.scanner.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sandbox.scanner' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
