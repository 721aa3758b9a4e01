"""Server CPU per request: TaylorDash (kernel + auth + projects) vs the raw Starlette + asyncpg baseline.

Throughput on a shared 2-core machine moves with whatever else runs; the CPU time a server process
spends per request moves much less. This script starts both servers on a fresh PostgreSQL database
(as ``bench_projects.py`` does), drives each scenario with wrk, and divides each process's CPU time
(user + system, read from /proc) by the requests it answered. For writes it also waits until the
event pipeline has delivered the run's events, so the relay and the mirror are counted too.

    .venv/bin/python tests/bench/cpu_projects.py [--duration 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from the repository root
from tests.bench import bench_projects as bench


def listening_pid(port: int) -> int:
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return conn.pid
    raise SystemExit(f"nothing listens on port {port}")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk per server and scenario")
    args = parser.parse_args()
    server_url = os.environ.get("TD_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    with bench.fresh_database(server_url) as database_url, tempfile.TemporaryDirectory() as data, ExitStack() as stack:
        env = bench.product_env(database_url, Path(data))
        bench.cli(env, "db", "upgrade")
        headers, _ = bench.credentials(env)
        kport, bport = bench.free_port(), bench.free_port()
        command = [str(bench.BIN / "taylordash"), "serve", "--port", str(kport)]
        kernel = stack.enter_context(bench.server(command, env, kport, "/health/live"))
        with httpx.Client(base_url=kernel, headers=headers, timeout=600) as client:
            seeded = bench.seed(client, big=False)
        dsn = bench.dsn(database_url)
        asyncio.run(bench.wait_for_outbox(dsn))
        baseline_env = {**env, "TD_BASELINE_DSN": dsn}
        baseline_cmd = [str(bench.BIN / "uvicorn"), "tests.bench.raw_baseline:app", "--port", str(bport)]
        baseline_cmd += ["--log-level", "warning", "--no-access-log"]
        baseline = stack.enter_context(bench.server(baseline_cmd, baseline_env, bport, "/api/v1/projects?limit=1"))
        processes = {"raw": psutil.Process(listening_pid(bport)), "taylordash": psutil.Process(listening_pid(kport))}
        body = json.dumps({"title": "benchmark task", "progress": 40, "estimate_minutes": 30, "labels": ["bench"]})
        task_paths = [f"/api/v1/components/{c}/tasks" for c in seeded["components"]]
        scenarios = [
            ("GET /projects/{id}", [f"/api/v1/projects/{seeded['target']}"], "GET", None),
            ("GET /projects (50)", ["/api/v1/projects?limit=50"], "GET", None),
            ("POST /components/{id}/tasks", task_paths, "POST", body),
        ]
        print(f"{'scenario':30} {'raw µs/req':>11} {'TD µs/req':>10} {'raw/TD':>7}")
        for name, paths, method, payload in scenarios:
            per_request = {}
            for label, url, extra in (("raw", baseline, {}), ("taylordash", kernel, headers)):
                asyncio.run(bench.wait_for_outbox(dsn))
                before = cpu_seconds(processes[label])
                hdrs = {**extra, **({"Content-Type": "application/json"} if payload else {})}
                result = bench.wrk(url, bench.lua(hdrs, paths, method, payload), args.duration)
                if label == "taylordash":
                    asyncio.run(bench.wait_for_outbox(dsn))  # the relay and mirror work of these events
                used = cpu_seconds(processes[label]) - before
                per_request[label] = used / (result["rps"] * args.duration) * 1e6
            ratio = per_request["raw"] / per_request["taylordash"]
            print(f"{name:30} {per_request['raw']:11.0f} {per_request['taylordash']:10.0f} {ratio:7.2f}", flush=True)


if __name__ == "__main__":
    main()
