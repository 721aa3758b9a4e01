"""Run a snippet of plugin code once in a fresh worker: what ``taylordash sandbox run`` does."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from sandbox.runner.api import LocalBackend, PluginApi
from sandbox.runner.limits import Limits
from sandbox.runner.supervisor import CallOutcome, Supervisor, WorkerSpec

EXIT_CODES = {"ok": 0, "error": 1, "blocked": 3, "contained": 4}
"""Exit status of ``taylordash sandbox run`` for each outcome."""


async def run_snippet(
    source: str,
    *,
    filename: str = "<snippet>",
    timeout: float = 10.0,  # noqa: ASYNC109 - the worker is killed at the timeout
    memory_mb: int = 256,
    permissions: list[str] | None = None,
    limits: Limits | None = None,
) -> dict[str, Any]:
    """Run ``source`` as plugin code with an ``api`` granting only ``permissions`` (none by default).
    Returns the report ``{"status", "result", "violations", "stdout", "duration_ms"}``."""
    limits = replace(limits or Limits(), memory_mb=memory_mb, call_timeout=timeout)
    # CPU time runs out before the wall clock, so a busy loop is reported as the CPU limit it hit.
    limits = replace(limits, cpu_seconds_per_call=min(limits.cpu_seconds_per_call, timeout * 0.6))
    violations: list[dict[str, str]] = []

    async def collect(plugin: str, found: list[dict[str, str]], context: dict[str, Any]) -> None:
        violations.extend(v for v in found if v not in violations)

    api = PluginApi("snippet", permissions or [], LocalBackend())
    supervisor = Supervisor(WorkerSpec("snippet", limits=limits), api, collect)
    started = time.perf_counter()
    try:
        await supervisor.start()
        outcome = await supervisor.call("snippet", "", {"source": source, "filename": filename}, timeout=timeout)
    finally:
        await supervisor.stop()
    outcome.violations = _merge(outcome.violations, violations)
    report = outcome.as_report()
    report["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return report


def _merge(first: list[dict[str, str]], second: list[dict[str, str]]) -> list[dict[str, str]]:
    merged = list(first)
    for item in second:
        if item not in merged:
            merged.append(item)
    return merged


def run_snippet_sync(source: str, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_snippet` on a fresh event loop."""
    return asyncio.run(run_snippet(source, **kwargs))


__all__ = ["EXIT_CODES", "CallOutcome", "run_snippet", "run_snippet_sync"]
