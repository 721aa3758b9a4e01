"""bandit, run in-process through its API over a list of files."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from sandbox.scanner.findings import Finding, Severity

_LOG_NAMES = ("bandit", "stevedore")


def _quietly_import_bandit() -> None:
    # bandit loads every formatter entry point on import; its optional SARIF formatter needs a package
    # we do not use (we write SARIF ourselves), and stevedore would log that as an error.
    logger = logging.getLogger("stevedore.extension")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import bandit.core.extension_loader  # noqa: F401
    finally:
        logger.setLevel(level)


_quietly_import_bandit()

from bandit.core import config as bandit_config  # noqa: E402
from bandit.core import extension_loader  # noqa: E402
from bandit.core import manager as bandit_manager  # noqa: E402


def known_test_ids() -> set[str]:
    """Every test id bandit knows (plugins and blacklist entries)."""
    mgr = extension_loader.MANAGER
    return set(mgr.plugins_by_id) | set(mgr.blacklist_by_id)


def test_names() -> dict[str, str]:
    """bandit test id -> test name, for rule descriptions in reports."""
    mgr = extension_loader.MANAGER
    names = {test_id: plugin.name for test_id, plugin in mgr.plugins_by_id.items()}
    names.update({test_id: entry["name"] for test_id, entry in mgr.blacklist_by_id.items()})
    return names


def run_bandit(
    files: Iterable[Path],
    relative: Callable[[Path], str],
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """Run every bandit test over ``files``; ``# nosec`` comments are ignored (suppressions live in
    the manifest). Returns the findings and ``[(file, reason)]`` for files bandit could not parse."""
    quiet = [(logging.getLogger(name), logging.getLogger(name).level) for name in _LOG_NAMES]
    for logger, _ in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        manager = bandit_manager.BanditManager(bandit_config.BanditConfig(), "file", quiet=True, ignore_nosec=True)
        batches = [[str(p)] for p in files] if progress is not None else [[str(p) for p in files]]
        for batch in batches:
            manager.files_list = batch
            manager.run_tests()
            if progress is not None:
                progress(len(batch))
    finally:
        for logger, level in quiet:
            logger.setLevel(level)
    findings = []
    sources: dict[str, list[str]] = {}
    for issue in manager.get_issue_list():
        path = Path(issue.fname)
        if issue.fname not in sources:
            try:
                sources[issue.fname] = path.read_text("utf-8", "replace").splitlines()
            except OSError:
                sources[issue.fname] = []
        lines = sources[issue.fname]
        code = lines[issue.lineno - 1].strip()[:200] if 0 < (issue.lineno or 0) <= len(lines) else ""
        findings.append(
            Finding(
                rule_id=issue.test_id,
                severity=Severity.parse(issue.severity),
                confidence=Severity.parse(issue.confidence),
                file=relative(path),
                line=issue.lineno or None,
                message=f"{issue.text} ({issue.test})",
                source="bandit",
                code=code,
            )
        )
    skipped = [(relative(Path(name)), reason) for name, reason in manager.get_skipped()]
    return findings, skipped
