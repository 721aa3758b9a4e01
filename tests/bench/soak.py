"""Soak test: N minutes of mixed API traffic and events against ``taylordash serve`` on PostgreSQL and
Mosquitto, watching the server for leaks.

    .venv/bin/python tests/bench/soak.py [--minutes 10] [--warmup 1] [--clients 6] [--interval 10]

The server runs every builtin plugin, with PostgreSQL and Mosquitto of its own (a private server and
broker started for the run, so the machine's shared ones are never touched). The clients create,
read, change, list and delete projects, components and tasks, read the event log and one event, and
one client follows the live event stream (SSE) the whole time; every change travels outbox → broker
→ processor → mirror.

Every ``--interval`` seconds the script samples the server process: resident memory (RSS), open file
descriptors, TCP connections, threads, and the server's sessions on PostgreSQL. It fails (exit 1)
unless:

- the error rate is 0 (any answer other than the expected 2xx, any transport error);
- RSS grows by less than 10 % from the end of the warm-up to the end (medians of the first and last
  minute after warm-up, so one sample's noise does not decide);
- open file descriptors, TCP connections and database sessions do not grow (the highest value in the
  last minute is at most the highest value in the first minute after warm-up, plus a margin of 2);
- the outbox is empty and every event is mirrored at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402

from tests.hardening.support import PrivatePostgres, Served, hardening_settings, mint_credentials  # noqa: E402
from tests.support.services import PrivateMosquitto  # noqa: E402

MARGIN = 2


@dataclass
class Sample:
    at: float
    rss_mb: float
    fds: int
    tcp: int
    threads: int
    db_sessions: int
    requests: int
    errors: int
    stream_events: int
    outbox_pending: int


@dataclass
class Traffic:
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    stream_events: int = 0


class Client:
    """One simulated user: a random walk over the API, keeping track of what it created."""

    def __init__(self, http: httpx.AsyncClient, traffic: Traffic, rng: random.Random) -> None:
        self.http = http
        self.traffic = traffic
        self.rng = rng
        self.projects: list[str] = []
        self.components: dict[str, str] = {}  # component id -> project id
        self.tasks: dict[str, str] = {}  # task id -> project id

    async def call(self, kind: str, method: str, url: str, expect: int, **kw: Any) -> Any:
        self.traffic.requests += 1
        self.traffic.by_kind[kind] = self.traffic.by_kind.get(kind, 0) + 1
        try:
            response = await self.http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.traffic.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return None
        if response.status_code != expect:
            self.traffic.errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
            return None
        return response.json() if response.content else {}

    async def step(self) -> None:
        r = self.rng.random()
        if not self.projects or r < 0.08:
            made = await self.call("project.create", "POST", "/api/v1/projects", 201, json={"name": _name(self.rng)})
            if made:
                self.projects.append(made["id"])
        elif r < 0.16:
            pid = self.rng.choice(self.projects)
            made = await self.call(
                "component.create", "POST", f"/api/v1/projects/{pid}/components", 201, json={"name": _name(self.rng)}
            )
            if made:
                self.components[made["id"]] = pid
        elif r < 0.30 and self.components:
            cid = self.rng.choice(list(self.components))
            made = await self.call(
                "task.create", "POST", f"/api/v1/components/{cid}/tasks", 201, json={"title": _name(self.rng)}
            )
            if made:
                self.tasks[made["id"]] = self.components[cid]
        elif r < 0.40 and self.tasks:
            tid = self.rng.choice(list(self.tasks))
            body = {"progress": self.rng.randint(0, 100), "status": self.rng.choice(["todo", "in_progress", "done"])}
            await self.call("task.update", "PATCH", f"/api/v1/tasks/{tid}", 200, json=body)
        elif r < 0.46:
            pid = self.rng.choice(self.projects)
            await self.call("project.update", "PATCH", f"/api/v1/projects/{pid}", 200, json={"owner": _name(self.rng)})
        elif r < 0.60:
            await self.call("project.get", "GET", f"/api/v1/projects/{self.rng.choice(self.projects)}", 200)
        elif r < 0.70:
            await self.call("project.list", "GET", "/api/v1/projects?limit=20", 200)
        elif r < 0.76:
            pid = self.rng.choice(self.projects)
            await self.call("task.list", "GET", f"/api/v1/projects/{pid}/tasks?limit=50", 200)
        elif r < 0.80:
            pid = self.rng.choice(self.projects)
            await self.call("project.graph", "GET", f"/api/v1/projects/{pid}/graph", 200)
        elif r < 0.90:
            page = await self.call("event.list", "GET", "/api/v1/events?limit=20", 200)
            if page and page["items"]:
                event_id = self.rng.choice(page["items"])["id"]
                await self.call("event.get", "GET", f"/api/v1/events/{event_id}", 200)
        elif r < 0.95 and self.tasks:
            tid = self.rng.choice(list(self.tasks))
            del self.tasks[tid]
            await self.call("task.delete", "DELETE", f"/api/v1/tasks/{tid}", 204)
        elif len(self.projects) > 3:
            # A whole project goes, with its components and tasks: the data set stays bounded.
            pid = self.projects.pop(0)
            self.components = {c: p for c, p in self.components.items() if p != pid}
            self.tasks = {t: p for t, p in self.tasks.items() if p != pid}
            await self.call("project.delete", "DELETE", f"/api/v1/projects/{pid}", 204)
        else:
            await self.call("me", "GET", "/api/v1/auth/me", 200)


def _name(rng: random.Random) -> str:
    return "soak " + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10))


async def follow_stream(base_url: str, headers: dict[str, str], traffic: Traffic, stop: asyncio.Event) -> None:
    """One dashboard following the live events for the whole run (reconnects if cut)."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=None) as http:
        while not stop.is_set():
            try:
                async with http.stream("GET", "/api/v1/events/stream") as response:
                    if response.status_code != 200:
                        traffic.errors.append(f"stream: {response.status_code}")
                        await asyncio.sleep(1)
                        continue
                    async for line in response.aiter_lines():
                        if line.startswith("data:"):
                            traffic.stream_events += 1
                        if stop.is_set():
                            return
            except httpx.HTTPError as exc:
                if not stop.is_set():
                    traffic.errors.append(f"stream: {type(exc).__name__}: {exc}")


async def sample(proc: psutil.Process, dsn: str, traffic: Traffic, started: float) -> Sample:
    with proc.oneshot():
        rss = proc.memory_info().rss / 1e6
        fds = proc.num_fds()
        tcp = len(proc.net_connections(kind="tcp"))
        threads = proc.num_threads()
    conn = await asyncpg.connect(dsn)
    try:
        sessions = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pending = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL")
    finally:
        await conn.close()
    return Sample(
        time.monotonic() - started,
        rss,
        fds,
        tcp,
        threads,
        sessions,
        traffic.requests,
        len(traffic.errors),
        traffic.stream_events,
        pending,
    )


async def soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="td-soak-"))
    pg = PrivatePostgres().start()
    broker = PrivateMosquitto().start()
    server: Served | None = None
    try:
        url = await asyncio.to_thread(pg.create_database, "soak")
        dsn = url.replace("postgresql+asyncpg", "postgresql")
        settings = hardening_settings(data_dir=work / "data", database_url=url, bus_url=broker.url)
        credentials = await asyncio.to_thread(mint_credentials, settings)
        server = await asyncio.to_thread(lambda: Served(settings, work / "serve.log").wait_ready())
        proc = psutil.Process(server.proc.pid)
        headers = credentials.headers("admin")
        traffic = Traffic()
        stop = asyncio.Event()
        rng = random.Random(args.seed)
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30, limits=limits) as http:

            async def run_client(n: int) -> None:
                client = Client(http, traffic, random.Random(rng.random()))
                while not stop.is_set():
                    await client.step()

            started = time.monotonic()
            tasks = [asyncio.create_task(run_client(n)) for n in range(args.clients)]
            tasks.append(asyncio.create_task(follow_stream(server.base_url, headers, traffic, stop)))
            samples: list[Sample] = []
            end = started + args.minutes * 60
            print(f"soak: {args.minutes} min, {args.clients} clients, server pid {proc.pid}, log {work}/serve.log")
            print(" t(s)  RSS MB  fds  tcp  thr  db  requests  errors  streamed  outbox")
            while time.monotonic() < end:
                await asyncio.sleep(min(args.interval, max(0.0, end - time.monotonic())))
                s = await sample(proc, dsn, traffic, started)
                samples.append(s)
                print(
                    f"{s.at:5.0f}  {s.rss_mb:6.1f}  {s.fds:3d}  {s.tcp:3d}  {s.threads:3d}  {s.db_sessions:2d}  "
                    f"{s.requests:8d}  {s.errors:6d}  {s.stream_events:8d}  {s.outbox_pending:6d}",
                    flush=True,
                )
            stop.set()
            await asyncio.gather(*tasks[:-1])
            tasks[-1].cancel()
            await asyncio.gather(tasks[-1], return_exceptions=True)
            elapsed = time.monotonic() - started

        # Let the pipeline catch up, then check nothing is left behind.
        conn = await asyncpg.connect(dsn)
        try:
            deadline = time.monotonic() + 60
            while True:
                pending = await conn.fetchval("SELECT count(*) FROM event_outbox")
                if pending == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            mirrored = await conn.fetchval("SELECT count(*) FROM events_mirror")
        finally:
            await conn.close()
        return report(args, samples, traffic, elapsed, pending, mirrored)
    finally:
        if server is not None:
            server.stop()
        broker.close()
        pg.close()


def _window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.at <= end]


def report(
    args: argparse.Namespace, samples: list[Sample], traffic: Traffic, elapsed: float, pending: int, mirrored: int
) -> int:
    warm = args.warmup * 60
    after = [s for s in samples if s.at >= warm] or samples
    first = _window(after, after[0].at, after[0].at + 60) or after[:1]
    last = _window(after, after[-1].at - 60, after[-1].at) or after[-1:]
    rss_first, rss_last = statistics.median(s.rss_mb for s in first), statistics.median(s.rss_mb for s in last)
    growth = (rss_last - rss_first) / rss_first * 100
    failures: list[str] = []
    error_rate = len(traffic.errors) / max(traffic.requests, 1)
    if traffic.errors:
        failures.append(f"{len(traffic.errors)} errors, first: {traffic.errors[:5]}")
    if growth >= 10:
        failures.append(f"RSS grew {growth:.1f} %")
    for name in ("fds", "tcp", "db_sessions"):
        before, now = max(getattr(s, name) for s in first), max(getattr(s, name) for s in last)
        if now > before + MARGIN:
            failures.append(f"{name} grew from {before} to {now}")
    if pending:
        failures.append(f"{pending} events still in the outbox")
    print()
    print(
        f"requests: {traffic.requests} in {elapsed:.0f} s ({traffic.requests / elapsed:.0f} req/s), "
        f"errors: {len(traffic.errors)} (rate {error_rate:.4%})"
    )
    print("mix: " + ", ".join(f"{k} {v}" for k, v in sorted(traffic.by_kind.items())))
    print(f"events: {mirrored} mirrored, {traffic.stream_events} seen on the live stream, {pending} left in the outbox")
    print(f"RSS after warm-up {rss_first:.1f} MB → end {rss_last:.1f} MB: {growth:+.1f} % (limit < 10 %)")
    for name in ("fds", "tcp", "threads", "db_sessions"):
        values = [getattr(s, name) for s in after]
        print(
            f"{name}: min {min(values)}, max {max(values)}, first minute max {max(getattr(s, name) for s in first)}, "
            f"last minute max {max(getattr(s, name) for s in last)}"
        )
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="Length of the run (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="Minutes before memory is compared (default 1)")
    parser.add_argument("--clients", type=int, default=6, help="Concurrent API clients (default 6)")
    parser.add_argument("--interval", type=float, default=10.0, help="Seconds between samples (default 10)")
    parser.add_argument("--seed", type=int, default=12, help="Seed of the traffic mix")
    args = parser.parse_args()
    sys.exit(asyncio.run(soak(args)))


if __name__ == "__main__":
    main()
