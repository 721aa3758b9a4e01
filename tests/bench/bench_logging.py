"""Cost of writing logs to the database: request throughput with database logging on vs off.

Two identical servers (uvicorn, one worker each, log level info so every request writes an access
log line) differ only in TD_PLUGINS__MONITORING__DB_LOGGING. wrk loads one at a time, alternating
off/on for several rounds, so both see the same machine state. Two figures per round:

- throughput (requests/s), the quantity the target is about, but at the mercy of anything else
  running on the machine;
- server CPU time per request (the server process's user+system time during the round, the log
  writer's background flushes included, divided by the requests served). A one-worker server under
  wrk is CPU-bound, so its throughput is the inverse of this, and other load on the machine barely
  changes it.

The cost is 1 minus the median of the rounds' on/off ratios of each. Both still move with heavy
load from elsewhere, so a third figure is measured in-process, where nothing else interferes: the
CPU the database log path adds per line (handler plus batched write, against the same database
kind), set against the off server's CPU per request. The database server's own
work for the inserts is not in the CPU figure (it runs in PostgreSQL's processes; for SQLite it is
in the server process and counted). Afterwards the "on" server's writer counters confirm the lines
were written and none dropped, else the figures would flatter the writer.

    .venv/bin/python tests/bench/bench_logging.py [--database postgresql|sqlite] [--rounds 15]
        [--duration 4] [--connections 32] [--path /api/v1/plugins/storage]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET = 0.10
HEADER = "x-test-role: admin"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_SERVER)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{data_dir / 'taylordash.db'}"
        return
    name = f"td_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def server(database_url: str, data_dir: Path, db_logging: bool) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
    env.update(
        TD_DATA_DIR=str(data_dir),
        TD_DATABASE_URL=database_url,
        TD_MIGRATE_ON_START="true",
        TD_LOG_LEVEL="info",
        TD_PLUGINS__MONITORING__DB_LOGGING=str(db_logging).lower(),
        TD_PLUGINS__MONITORING__SAMPLER_INTERVAL_SECONDS="0",
        PYTHONPATH=str(ROOT),
    )
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "--factory", "tests.storage.server_app:create"),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start:\n{(data_dir / 'server.log').read_text()}")
            time.sleep(0.1)
        yield base, psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def writer_cost(kind: str, root: Path, lines: int = 20_000) -> float:
    """CPU microseconds the database log path adds per access-log line, measured in-process."""
    import logging

    import structlog
    from prometheus_client import CollectorRegistry

    sys.path.insert(0, str(ROOT))
    from builtin_plugins.monitoring.logsink import DatabaseLogHandler, LogWriter
    from builtin_plugins.monitoring.metrics import MonitoringMetrics
    from kernel.app import Kernel
    from kernel.logging import configure_logging
    from kernel.settings import load_settings

    async def measure(url: str) -> float:
        kernel = Kernel(load_settings(data_dir=root / "writer", database_url=url, migrate_on_start=True))
        await kernel.prepare_schema(True)
        configure_logging("info", "json")
        logging.getLogger().handlers = []
        log = structlog.get_logger("taylordash.access")

        def burst() -> float:
            started = time.process_time()
            for _ in range(lines):
                log.info("request", method="GET", path="/api/v1/plugins/storage", status=200, duration_ms=1.2)
            return time.process_time() - started

        bare = burst()
        writer = LogWriter(
            kernel.db,
            MonitoringMetrics(CollectorRegistry()),
            "bench",
            queue_size=lines,
            batch_size=500,
            flush_seconds=60,
        )
        handler = DatabaseLogHandler(writer, logging.INFO)
        logging.getLogger().addHandler(handler)
        emitted = burst()
        started = time.process_time()
        await writer.flush()
        written = time.process_time() - started
        logging.getLogger().removeHandler(handler)
        await kernel.db.dispose()
        return (emitted - bare + written) / lines * 1e6

    (root / "writer").mkdir(exist_ok=True)
    with database(kind, root / "writer") as url:
        return asyncio.run(measure(url))


def wrk(url: str, duration: int, connections: int) -> tuple[float, int]:
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-H", HEADER, url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if not match:
        raise SystemExit(f"cannot read wrk output:\n{result.stdout}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if non_2xx:
        raise SystemExit(f"{url} answered {non_2xx.group(1)} errors")
    total = re.search(r"(\d+) requests in", result.stdout)
    return float(match.group(1)), int(total.group(1)) if total else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--path", default="/api/v1/plugins/storage")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="td-bench-logging-"))
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with ExitStack() as stack:
        servers = {}
        for enabled in (False, True):
            data_dir = root / ("on" if enabled else "off")
            data_dir.mkdir()
            url = stack.enter_context(database(args.database, data_dir))
            servers[enabled] = stack.enter_context(server(url, data_dir, enabled))
        for base, _ in servers.values():
            wrk(base + args.path, 5, args.connections)  # warm-up
        for round_number in range(args.rounds):
            for enabled in (False, True):
                base, process = servers[enabled]
                before = sum(process.cpu_times()[:2])
                rate, requests = wrk(base + args.path, args.duration, args.connections)
                time.sleep(1.2)  # let the writer flush this round's lines, so their cost is counted
                used = sum(process.cpu_times()[:2]) - before
                rates[enabled].append(rate)
                cpu[enabled].append(used / requests * 1e6)
                print(
                    f"round {round_number + 1}: database logging {'on ' if enabled else 'off'} "
                    f"{rate:7.0f} req/s, {cpu[enabled][-1]:6.0f} µs server CPU per request"
                )
        stats = httpx.get(servers[True][0] + "/api/v1/logs/stats", headers={"x-test-role": "admin"}).json()
    per_line = writer_cost(args.database, root)
    shutil.rmtree(root, ignore_errors=True)
    rate_ratios = [on / off for off, on in zip(rates[False], rates[True], strict=True)]
    cpu_ratios = [off / on for off, on in zip(cpu[False], cpu[True], strict=True)]
    writer = stats["writer"]
    print(
        f"\n{args.database}, GET {args.path}, {args.connections} connections, "
        f"{args.rounds} rounds of {args.duration} s; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"throughput: off {statistics.median(rates[False]):.0f}, on {statistics.median(rates[True]):.0f} req/s "
        f"(median); cost {1 - statistics.median(rate_ratios):.1%}"
    )
    print(
        f"server CPU per request: off {statistics.median(cpu[False]):.0f} µs, on {statistics.median(cpu[True]):.0f} µs "
        f"(median); throughput cost when CPU-bound {1 - statistics.median(cpu_ratios):.1%} (target < {TARGET:.0%})"
    )
    cpu_off = statistics.median(cpu[False])
    print(
        f"in-process: the database log path adds {per_line:.1f} µs CPU per line; one line per request against "
        f"{cpu_off:.0f} µs per request is a cost of {per_line / (cpu_off + per_line):.1%}"
    )
    print(
        f"writer of the 'on' server: {writer['written']} lines written, {writer['dropped']} dropped, "
        f"{writer['failed_batches']} failed batches"
    )
    if writer["dropped"] or writer["failed_batches"]:
        raise SystemExit("lines were dropped or failed: the measurement does not count")


if __name__ == "__main__":
    main()
