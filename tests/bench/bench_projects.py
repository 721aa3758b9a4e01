"""Projects plugin against PostgreSQL: TaylorDash (kernel + auth + plugin) vs a raw Starlette + asyncpg app.

Self-contained: creates a fresh database on the PostgreSQL server (``TD_BENCH_DATABASE_URL``, default
the local one), migrates it, creates an admin and an API token with the auth plugin's CLI, seeds the
data through the API, starts ``taylordash serve`` (one worker) and ``tests/bench/raw_baseline.py`` on
free ports, alternates wrk runs (32 connections) between them and prints medians, then drops the
database. Targets (issue 5): GET /projects/{id} and GET /projects (50) ≥ 0.70 of the baseline,
POST /components/{id}/tasks ≥ 0.50; a page of tasks of a 100,000-task project p99 < 30 ms;
/graph of 5,000 components and 20,000 edges < 300 ms.

    .venv/bin/python tests/bench/bench_projects.py [--runs 3] [--duration 10] [--skip-big]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONNECTIONS = 32
SETTLE_SECONDS = 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def fresh_database(server_url: str) -> Any:
    name = f"td_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn(server_url))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def product_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
    env.update(TD_DATABASE_URL=database_url, TD_DATA_DIR=str(data_dir), TD_LOG_LEVEL="warning")
    return env


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(BIN / "taylordash"), *args], env=env, input=stdin, capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"taylordash {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def server(command: list[str], env: dict[str, str], port: int, ready_path: str) -> Any:
    log = tempfile.NamedTemporaryFile(prefix="td-bench-", suffix=".log", delete=False)
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}{ready_path}").status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server {command[:3]} did not start; see {log.name}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# -- wrk ----------------------------------------------------------------------------------------------
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, script: str, duration: int, connections: int = CONNECTIONS) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    out = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", fh.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(fh.name)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def lua(headers: dict[str, str], paths: list[str], method: str = "GET", body: str | None = None) -> str:
    lines = [f'wrk.headers["{k}"] = {json.dumps(v)}' for k, v in headers.items()]
    lines.append("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
    lines.append(f"local body = {json.dumps(body) if body is not None else 'nil'}")
    lines.append("local n = 0")
    lines.append(
        f'request = function() n = n + 1; return wrk.format("{method}", paths[(n % #paths) + 1], nil, body) end'
    )
    return "\n".join(lines) + "\n"


# -- seeding ------------------------------------------------------------------------------------------
def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def project_document(components: int, tasks_per_component: int, edges: int, seed: int = 7) -> dict[str, Any]:
    """An export document with fresh ids: a DAG of ``edges`` dependencies (each on an earlier one)."""
    rng = random.Random(seed)
    stamp = now_text()
    pid = str(uuid.uuid4())
    comps = [
        {
            "id": str(uuid.uuid4()),
            "project_id": pid,
            "name": f"component {i}",
            "estimate_minutes": rng.randint(30, 600),
            "created_at": stamp,
            "updated_at": stamp,
            "depends_on": [],
        }
        for i in range(components)
    ]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        a, b = rng.randrange(1, components), 0
        b = rng.randrange(0, a)
        pairs.add((a, b))
    for a, b in pairs:
        comps[a]["depends_on"].append(comps[b]["id"])
    tasks = [
        {
            "id": str(uuid.uuid4()),
            "project_id": pid,
            "component_id": c["id"],
            "title": f"task {i} of {c['name']}",
            "description": "lorem ipsum dolor sit amet",
            "status": rng.choice(["todo", "in_progress", "done"]),
            "progress": rng.randint(0, 100),
            "assignee": rng.choice(["ada", "grace", "linus", None]),
            "labels": rng.sample(["ui", "api", "db", "ops"], 2),
            "estimate_minutes": rng.randint(15, 240),
            "created_at": stamp,
            "updated_at": stamp,
        }
        for c in comps
        for i in range(tasks_per_component)
    ]
    return {
        "project": {"id": pid, "name": "bench", "created_at": stamp, "updated_at": stamp},
        "components": comps,
        "tasks": tasks,
    }


def import_document(client: httpx.Client, doc: dict[str, Any]) -> tuple[str, float]:
    start = time.perf_counter()
    response = client.post(
        "/api/v1/projects/import", content=json.dumps(doc), headers={"content-type": "application/json"}
    )
    elapsed = time.perf_counter() - start
    assert response.status_code == 201, response.text[:500]
    return response.json()["id"], elapsed


def seed(client: httpx.Client, big: bool) -> dict[str, Any]:
    for i in range(200):
        r = client.post("/api/v1/projects", json={"name": f"project {i}", "labels": ["bench"], "metadata": {"i": i}})
        assert r.status_code == 201, r.text
    target = r.json()["id"]
    writes = client.post("/api/v1/projects", json={"name": "writes"}).json()["id"]
    components = [
        client.post(f"/api/v1/projects/{writes}/components", json={"name": f"c{i}"}).json()["id"] for i in range(100)
    ]
    seeded: dict[str, Any] = {"target": target, "components": components}
    if big:
        big_id, seconds = import_document(client, project_document(100, 1000, 0))
        seeded["big"], seeded["big_import_seconds"] = big_id, seconds
        cursors, cursor = [None], None
        while len(cursors) < 60:
            page = client.get(f"/api/v1/projects/{big_id}/tasks", params={"limit": 50, "cursor": cursor}).json()
            cursor = page["next_cursor"]
            for _ in range(30):  # jump ahead so the cursors spread over the whole list
                cursor = client.get(f"/api/v1/projects/{big_id}/tasks", params={"limit": 50, "cursor": cursor}).json()[
                    "next_cursor"
                ]
            cursors.append(cursor)
        seeded["big_cursors"] = cursors
        graph_id, seconds = import_document(client, project_document(5000, 0, 20000))
        seeded["graph"], seeded["graph_import_seconds"] = graph_id, seconds
    return seeded


def settle(database_url: str) -> None:
    """Let the event pipeline finish the previous step's events, then stay idle a moment: a backlog
    being mirrored runs in the server's event loop and would be measured with the next step."""
    asyncio.run(wait_for_outbox(dsn(database_url)))
    time.sleep(SETTLE_SECONDS)


async def wait_for_outbox(database: str, limit: float = 1800) -> float:
    """Wait until every outbox row is delivered: the relay and processor of the seeding's events would
    otherwise run during the measurements."""
    start = time.monotonic()
    conn = await asyncpg.connect(database)
    try:
        while time.monotonic() - start < limit:
            # The processor deletes an outbox row when it has mirrored the event.
            if await conn.fetchval("SELECT count(*) FROM event_outbox") == 0:
                break
            await asyncio.sleep(1)
        else:
            print("warning: outbox not drained; measuring anyway", flush=True)
    finally:
        await conn.close()
    return time.monotonic() - start


# -- main ---------------------------------------------------------------------------------------------
def credentials(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Authorization for the kernel: a real API token when the auth plugin is there."""
    plugins = json.loads(cli(env, "plugins", "list", "--json"))
    names = {p["name"] for p in plugins if p.get("active", p.get("enabled"))}
    if "auth" not in names:
        raise SystemExit("the auth plugin is not active: this benchmark measures with real authentication")
    cli(env, "users", "create", "bench", "--role", "admin", "--password-stdin", stdin="bench-password-0123456789\n")
    token = cli(env, "tokens", "create", "bench", "--name", "bench").splitlines()[-1].strip()
    return {"Authorization": f"Bearer {token}"}, "API token (auth plugin)"


def measure_big(kernel: str, headers: dict[str, str], seeded: dict[str, Any], args: argparse.Namespace) -> None:
    """The 100,000-task listing (latency alone, then throughput) and the 5,000-component graph."""
    big_paths = [
        f"/api/v1/projects/{seeded['big']}/tasks?limit=50" + (f"&cursor={c}" if c else "")
        for c in seeded["big_cursors"]
    ]
    # Latency of one request at a time (the target), then throughput under 32 connections,
    # where p99 is mostly the time a request waits for the one worker.
    alone = [wrk(kernel, lua(headers, big_paths), args.duration, connections=1) for _ in range(args.runs)]
    loaded = [wrk(kernel, lua(headers, big_paths), args.duration) for _ in range(args.runs)]
    p99 = median(alone, "p99")
    print(
        f"\nPage of 50 tasks, project of 100,000 tasks (60 cursors over the list), one connection: "
        f"p50 {median(alone, 'p50'):.2f} ms, p99 {p99:.2f} ms "
        f"(target < 30 ms: {'ok' if p99 < 30 else 'MISSED'}); "
        f"{CONNECTIONS} connections: {median(loaded, 'rps'):.0f} req/s, p50 {median(loaded, 'p50'):.2f} ms, "
        f"p99 {median(loaded, 'p99'):.2f} ms"
    )
    with httpx.Client(base_url=kernel, headers=headers, timeout=60) as client:
        times = []
        for _ in range(11):
            start = time.perf_counter()
            response = client.get(f"/api/v1/projects/{seeded['graph']}/graph")
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200 and len(response.json()["edges"]) == 20000
    worst = max(times)
    print(
        f"GET /graph, 5,000 components and 20,000 edges: median {statistics.median(times):.0f} ms, "
        f"worst {worst:.0f} ms of 11 (target < 300 ms: {'ok' if worst < 300 else 'MISSED'})"
    )
    print(
        f"Seeding by import: 100,000 tasks in {seeded['big_import_seconds']:.1f} s, "
        f"5,000 components + 20,000 edges in {seeded['graph_import_seconds']:.1f} s"
    )


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per server and scenario (medians reported)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--skip-big", action="store_true", help="skip the 100,000-task and 5,000-component data")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    server_url = os.environ.get("TD_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    with fresh_database(server_url) as database_url, tempfile.TemporaryDirectory() as data, ExitStack() as stack:
        env = product_env(database_url, Path(data))
        cli(env, "db", "upgrade")
        headers, auth_kind = credentials(env)
        kport, bport = free_port(), free_port()
        kernel = stack.enter_context(
            server([str(BIN / "taylordash"), "serve", "--port", str(kport)], env, kport, "/health/live")
        )
        with httpx.Client(base_url=kernel, headers=headers, timeout=600) as client:
            seeded = seed(client, big=not args.skip_big)
        drained = asyncio.run(wait_for_outbox(dsn(database_url)))
        print(f"seeded; the event pipeline delivered the seeding's events in {drained:.0f} s", flush=True)
        time.sleep(SETTLE_SECONDS)
        baseline_env = {**env, "TD_BASELINE_DSN": dsn(database_url)}
        baseline_cmd = [
            str(BIN / "uvicorn"),
            "tests.bench.raw_baseline:app",
            "--port",
            str(bport),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        baseline = stack.enter_context(server(baseline_cmd, baseline_env, bport, "/api/v1/projects?limit=1"))
        task_body = json.dumps({"title": "benchmark task", "progress": 40, "estimate_minutes": 30, "labels": ["bench"]})
        post_paths = [f"/api/v1/components/{c}/tasks" for c in seeded["components"]]
        json_headers = {"Content-Type": "application/json"}
        scenarios = [
            ("GET /projects/{id}", [f"/api/v1/projects/{seeded['target']}"], "GET", None, 0.70),
            ("GET /projects (50)", ["/api/v1/projects?limit=50"], "GET", None, 0.70),
            ("POST /components/{id}/tasks", post_paths, "POST", task_body, 0.50),
        ]
        if not args.skip_big:
            settle(database_url)
            measure_big(kernel, headers, seeded, args)
        rows = []
        for name, paths, method, body, target in scenarios:
            settle(database_url)  # the previous scenario's events are delivered before measuring
            results: dict[str, list[dict[str, float]]] = {"baseline": [], "taylordash": []}
            for _ in range(args.runs):
                for label, url, extra in (("baseline", baseline, {}), ("taylordash", kernel, headers)):
                    hdrs = {**extra, **(json_headers if body else {})}
                    results[label].append(wrk(url, lua(hdrs, paths, method, body), args.duration))
            base, ours = results["baseline"], results["taylordash"]
            ratio = median(ours, "rps") / median(base, "rps")
            rows.append((name, median(base, "rps"), median(ours, "rps"), ratio, target, base, ours))
        print(
            f"\nTaylorDash vs raw Starlette+asyncpg, PostgreSQL, wrk -c{CONNECTIONS} -d{args.duration}s, "
            f"median of {args.runs} alternating runs; auth: {auth_kind}"
        )
        print(
            f"{'scenario':34} {'raw req/s':>10} {'p50':>7} {'p99':>7} "
            f"{'TD req/s':>9} {'p50':>7} {'p99':>7} {'ratio':>6} target"
        )
        for name, b_rps, o_rps, ratio, target, base, ours in rows:
            verdict = "ok" if ratio >= target else "MISSED"
            print(
                f"{name:34} {b_rps:10.0f} {median(base, 'p50'):6.2f}ms {median(base, 'p99'):6.2f}ms "
                f"{o_rps:9.0f} {median(ours, 'p50'):6.2f}ms {median(ours, 'p99'):6.2f}ms "
                f"{ratio:6.2f} >= {target:.2f} {verdict}"
            )
            print(f"{'':34} runs raw {[round(r['rps']) for r in base]} TD {[round(r['rps']) for r in ours]}")


if __name__ == "__main__":
    main()
