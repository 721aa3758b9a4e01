"""Benchmark: a warm sandboxed hook call against the same function called in-process, and the cold
start of a sandbox worker, in the same run.

    .venv/bin/python tests/bench/bench_sandbox.py [--calls 2000] [--starts 15]

The plugin is one route returning a small dict. "In-process" awaits the same handler the way the
kernel awaits an in-process plugin's endpoint; "sandboxed" is ``Supervisor.call`` — a frame to the
worker, the restricted handler, a frame back. A cold start is ``Supervisor.start``: spawning the
worker, applying the limits, loading the plugin under RestrictedPython, until its ``ready`` frame.
Targets: p50 overhead under 2 ms, cold start under 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox.runner.api import LocalBackend, PluginApi
from sandbox.runner.supervisor import Supervisor, WorkerSpec

HANDLER = """from sdk import route


@route("/stats")
def stats(request):
    return {"projects": 3, "open_tasks": 12, "ok": True}
"""


def stats(request: dict[str, Any]) -> dict[str, Any]:
    return {"projects": 3, "open_tasks": 12, "ok": True}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(calls: int, starts: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="td-bench-sandbox-"))
    (root / "bench_plugin").mkdir()
    (root / "bench_plugin" / "__init__.py").write_text(HANDLER)
    request = {"method": "GET", "path": "/stats", "params": {}, "query": {}, "body": None,
               "principal": {"id": "bench", "role": "viewer"}}  # fmt: skip

    async def in_process(req: dict[str, Any]) -> dict[str, Any]:
        return stats(req)

    api = PluginApi("bench", [], LocalBackend())
    spec = WorkerSpec("bench", root=root, entry="bench_plugin")
    cold: list[float] = []
    for _ in range(starts):
        supervisor = Supervisor(spec, api)
        began = time.perf_counter()
        await supervisor.start()
        cold.append((time.perf_counter() - began) * 1000)
        await supervisor.stop()

    supervisor = Supervisor(spec, api)
    await supervisor.start()
    key = supervisor.contributions["routes"][0]["key"]
    for _ in range(200):  # warm both paths
        await supervisor.call("route", key, request)
        await in_process(request)
    local: list[float] = []
    sandboxed: list[float] = []
    for _ in range(calls):  # alternate, so both see the same machine load
        began = time.perf_counter()
        assert (await in_process(request))["ok"]
        local.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        outcome = await supervisor.call("route", key, request)
        sandboxed.append((time.perf_counter() - began) * 1000)
        assert outcome.ok and outcome.value["ok"]
    await supervisor.stop()

    overhead = statistics.median(sandboxed) - statistics.median(local)
    rows = [
        ("in-process call", statistics.median(local), percentile(local, 0.95), ""),
        ("sandboxed call (warm)", statistics.median(sandboxed), percentile(sandboxed, 0.95), ""),
        ("added by the sandbox", overhead, percentile(sandboxed, 0.95) - percentile(local, 0.95),
         "PASS" if overhead < 2 else "FAIL (target < 2 ms)"),
        ("cold worker start", statistics.median(cold), percentile(cold, 0.95),
         "PASS" if statistics.median(cold) < 300 else "FAIL (target < 300 ms)"),
    ]  # fmt: skip
    print(f"{calls} calls, {starts} cold starts")
    print(f"{'measure':<24} {'p50 ms':>10} {'p95 ms':>10}  verdict")
    for name, p50, p95, verdict in rows:
        print(f"{name:<24} {p50:>10.3f} {p95:>10.3f}  {verdict}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--starts", type=int, default=15)
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    asyncio.run(main(args.calls, args.starts))
