"""Scale-out: three ``taylordash serve`` processes vs one, same run, mixed read/write workload.

Self-contained: a fresh database on the PostgreSQL server (``TD_BENCH_DATABASE_URL``, default the
local one), migrated once; the MQTT broker on 127.0.0.1:1883 (``--broker host:port``) with a share
group of the bench's own; every instance with all builtin plugins, one worker each. The client is
three wrk processes of one thread and 11 connections each (33 in all): against one instance, all
three aim at it; against three, one per instance — the same client in both setups. The workload is
70 % ``GET /projects/{id}``, 15 % ``GET /projects?limit=50`` and 15 % ``POST
/projects/{id}/components`` (each write commits an event that the instances relay, mirror and
handle). The setups alternate ``--runs`` times; medians are printed, with where the CPU went
(per kernel process, PostgreSQL, Mosquitto, wrk) against the machine's cores.

    .venv/bin/python tests/bench/bench_scaleout.py [--runs 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_projects import _ms, dsn, fresh_database  # noqa: E402
from tests.support.cli import serving  # noqa: E402
from tests.support.cluster import PASSWORD, deployment_env, instance_env, prepare, unique_group  # noqa: E402

CLIENTS, CONNECTIONS = 3, 11
PROJECTS = 200
SETTLE_SECONDS = 5
READY = 180  # seconds an instance may take to start on a loaded machine


def lua(token: str, project_ids: list[str]) -> str:
    ids = ",".join(json.dumps(i) for i in project_ids)
    return f"""
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
local ids = {{{ids}}}
local n = 0
request = function()
  n = n + 1
  local id = ids[(n * 7919 % #ids) + 1]
  local r = n % 20
  if r < 3 then
    return wrk.format("POST", "/api/v1/projects/" .. id .. "/components", nil, '{{"name":"bench"}}')
  elseif r < 6 then
    return wrk.format("GET", "/api/v1/projects?limit=50")
  end
  return wrk.format("GET", "/api/v1/projects/" .. id)
end
"""


def parse_wrk(out: str) -> dict[str, float]:
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def processes_named(name: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] == name:
            found.append(proc)
    return found


def kernel_processes(ports: list[int]) -> list[psutil.Process]:
    """The ``taylordash serve`` processes listening on ``ports``."""
    wanted = set(ports)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "serve" in cmdline and "--port" in cmdline and int(cmdline[cmdline.index("--port") + 1]) in wanted:
            found.append(proc)
    return found


def run_load(urls: list[str], script: str, duration: int) -> dict[str, Any]:
    """Three wrk clients spread over ``urls``; their summed throughput and the CPU each party used."""
    ports = [int(u.rsplit(":", 1)[1]) for u in urls]
    kernels = kernel_processes(ports)
    assert len(kernels) == len(urls), "a kernel process was not found"
    postgres, mosquitto = processes_named("postgres"), processes_named("mosquitto")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    before = {
        "kernel": [cpu_seconds([k]) for k in kernels],
        "postgres": cpu_seconds(postgres),
        "mosquitto": cpu_seconds(mosquitto),
    }
    machine_before = psutil.cpu_times()
    started = time.monotonic()
    clients = [
        subprocess.Popen(
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", fh.name, urls[i % len(urls)]],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(CLIENTS)
    ]
    wrk_procs = [psutil.Process(c.pid) for c in clients]
    wrk_cpu = 0.0
    while any(c.poll() is None for c in clients):
        wrk_cpu = max(wrk_cpu, cpu_seconds(wrk_procs))
        time.sleep(0.5)
    outputs = [c.communicate()[0] for c in clients]
    elapsed = time.monotonic() - started
    machine_after = psutil.cpu_times()
    os.unlink(fh.name)
    results = [parse_wrk(out) for out in outputs]
    busy = (sum(machine_after) - machine_after.idle - machine_after.iowait) - (
        sum(machine_before) - machine_before.idle - machine_before.iowait
    )
    return {
        "rps": sum(r["rps"] for r in results),
        "p50": statistics.median(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "cpu": {
            "kernels": [(cpu_seconds([k]) - b) / elapsed for k, b in zip(kernels, before["kernel"], strict=True)],
            "postgres": (cpu_seconds(postgres) - before["postgres"]) / elapsed,
            "mosquitto": (cpu_seconds(mosquitto) - before["mosquitto"]) / elapsed,
            "wrk": wrk_cpu / elapsed,
            "machine": busy / elapsed,
        },
        "load": os.getloadavg()[0],
    }


def idle_cpu(urls: list[str], seconds: float = SETTLE_SECONDS) -> float:
    """Cores the kernel processes use with no request coming in (background work), summed."""
    kernels = kernel_processes([int(u.rsplit(":", 1)[1]) for u in urls])
    before = cpu_seconds(kernels)
    time.sleep(seconds)
    return (cpu_seconds(kernels) - before) / seconds


async def wait_for_outbox(database_url: str, limit: float = 300) -> None:
    conn = await asyncpg.connect(dsn(database_url))
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:  # the processor deletes a row once the event is mirrored
            if not await conn.fetchval("SELECT count(*) FROM event_outbox"):
                return
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def seed(url: str) -> tuple[str, list[str]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD})
        login.raise_for_status()
        token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ids = []
        for n in range(PROJECTS):
            made = client.post("/api/v1/projects", json={"name": f"bench {n}"}, headers=headers)
            made.raise_for_status()
            ids.append(made.json()["id"])
    return token, ids


def show(label: str, runs: list[dict[str, Any]]) -> dict[str, float]:
    def med(get: Any) -> float:
        return statistics.median(get(r) for r in runs)

    summary = {
        "rps": med(lambda r: r["rps"]),
        "p50": med(lambda r: r["p50"]),
        "p99": med(lambda r: r["p99"]),
        "errors": sum(r["errors"] for r in runs),
        "kernel_cpu": med(lambda r: sum(r["cpu"]["kernels"])),
        "per_kernel": med(lambda r: max(r["cpu"]["kernels"])),
        "postgres": med(lambda r: r["cpu"]["postgres"]),
        "mosquitto": med(lambda r: r["cpu"]["mosquitto"]),
        "wrk": med(lambda r: r["cpu"]["wrk"]),
        "machine": med(lambda r: r["cpu"]["machine"]),
        "load": med(lambda r: r["load"]),
        "idle": med(lambda r: r["idle"]),
        "per_cpu_second": med(lambda r: r["rps"] / max(sum(r["cpu"]["kernels"]), 1e-9)),
    }
    each = ", ".join(f"{r['rps']:,.0f}" for r in runs)
    print(
        f"{label}: {summary['rps']:,.0f} req/s (runs: {each}), "
        f"p50 {summary['p50']:.1f} ms, p99 {summary['p99']:.1f} ms, non-2xx {summary['errors']:.0f}\n"
        f"  CPU in cores: kernels {summary['kernel_cpu']:.2f} (busiest {summary['per_kernel']:.2f}), "
        f"PostgreSQL {summary['postgres']:.2f}, Mosquitto {summary['mosquitto']:.2f}, wrk {summary['wrk']:.2f}; "
        f"machine busy {summary['machine']:.2f} of {psutil.cpu_count()} cores, load {summary['load']:.1f}\n"
        f"  requests per kernel CPU-second {summary['per_cpu_second']:,.0f}; kernels idle {summary['idle']:.3f} cores",
        flush=True,
    )
    return summary


def instance(shared: dict[str, str], name: str, root: Path) -> Any:
    """``taylordash serve`` as instance ``name`` of the deployment; its base URL once ready."""
    env = instance_env(shared, name)
    return serving(env, log=root / f"{name}.log", ready_path="/health/ready", timeout=READY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="alternations of the two setups (medians reported)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--broker", default="127.0.0.1:1883", help="MQTT broker host:port")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    host, _, port = args.broker.partition(":")
    server = os.environ.get("TD_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    root = Path(tempfile.mkdtemp(prefix="td-bench-scaleout-"))
    with fresh_database(server) as database_url:
        asyncio.run(prepare(database_url, root / "setup", {"bench": "admin"}))
        shared = deployment_env(database_url, (host, int(port)), root, unique_group("bench"))
        shared.update(TD_LOG_LEVEL="warning", TD_PLUGINS__MONITORING__DB_LOGGING="false")
        results: dict[str, list[dict[str, Any]]] = {"one": [], "three": []}
        with instance(shared, "a", root) as first:
            token, ids = seed(first)
            script = lua(token, ids)
            asyncio.run(wait_for_outbox(database_url))
            for run in range(args.runs):
                asyncio.run(wait_for_outbox(database_url))
                idle = idle_cpu([first])
                results["one"].append({**run_load([first], script, args.duration), "idle": idle})
                print(f"run {run + 1}: one instance {results['one'][-1]['rps']:,.0f} req/s", flush=True)
                with ExitStack() as stack:
                    others = [stack.enter_context(instance(shared, name, root)) for name in ("b", "c")]
                    asyncio.run(wait_for_outbox(database_url))
                    idle = idle_cpu([first, *others])
                    results["three"].append({**run_load([first, *others], script, args.duration), "idle": idle})
                    print(f"run {run + 1}: three instances {results['three'][-1]['rps']:,.0f} req/s", flush=True)
            asyncio.run(wait_for_outbox(database_url))
    print(
        f"\nmixed workload (70 % get, 15 % list, 15 % create), {CLIENTS} wrk x {CONNECTIONS} connections, "
        f"{args.duration} s, {args.runs} runs, {psutil.cpu_count()} cores"
    )
    one = show("one instance   ", results["one"])
    three = show("three instances", results["three"])
    pairs = [t["rps"] / o["rps"] for o, t in zip(results["one"], results["three"], strict=True)]
    print(
        f"three / one: {three['rps'] / one['rps']:.2f} (medians); per alternation "
        f"{', '.join(f'{p:.2f}' for p in pairs)}, median {statistics.median(pairs):.2f}"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
