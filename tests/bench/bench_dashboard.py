"""The overview page with 100 projects: server-side render time and bytes transferred.

The app runs in-process (all builtin plugins) on PostgreSQL and SQLite, with 100 projects of 3
components and 6 tasks each. A signed-in browser session (cookies) asks for ``/`` repeatedly; the
time is measured around the ASGI call, so it is the server's whole work (middleware, authentication,
the API sub-requests, the task-count query, the health checks, the template). Bytes are the page plus
every asset it loads (CSS, scripts), uncompressed — what a first visit transfers without gzip.
Baseline in the same run: ``GET /api/v1/projects?limit=100`` (the JSON the page is built from).
Targets: < 100 ms median render, < 300 KB transferred.

    .venv/bin/python tests/bench/bench_dashboard.py [--backend postgresql|sqlite|both] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from asgi_lifespan import LifespanManager  # noqa: E402

from builtin_plugins.auth.audit import Actor  # noqa: E402
from kernel.app import create_app  # noqa: E402
from kernel.settings import load_settings  # noqa: E402
from tests.auth.conftest import FAST_AUTH, PASSWORD, TEST_SECRET  # noqa: E402
from tests.conftest import PostgresServer  # noqa: E402
from tests.support import services  # noqa: E402

PROJECTS, COMPONENTS, TASKS = 100, 3, 2
ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


async def seed(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    statuses = ("todo", "in_progress", "blocked", "done", "cancelled")
    for p in range(PROJECTS):
        project = (await client.post("/api/v1/projects", json={"name": f"Project {p:03d}"}, headers=headers)).json()
        for c in range(COMPONENTS):
            url = f"/api/v1/projects/{project['id']}/components"
            component = (await client.post(url, json={"name": f"C{c}"}, headers=headers)).json()
            for t in range(TASKS):
                status = statuses[(p + c + t) % len(statuses)]
                await client.post(
                    f"/api/v1/components/{component['id']}/tasks",
                    json={"title": f"T{t}", "status": status},
                    headers=headers,
                )


async def measure(database_url: str, data_dir: Path, requests: int) -> dict[str, Any]:
    settings = load_settings(
        data_dir=data_dir,
        database_url=database_url,
        migrate_on_start=True,
        log_level="warning",
        secret_key=TEST_SECRET,
        plugins={"auth": FAST_AUTH},
    )
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        await app.kernel.services["auth"].users.create("bench", PASSWORD, "admin", Actor("cli", name="bench"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            form = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            await client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
            page = await client.get("/")
            csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
            await seed(client, {"X-CSRF-Token": csrf})

            async def timed(path: str) -> tuple[list[float], httpx.Response]:
                times = []
                response = None
                for _ in range(requests):
                    start = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.text[:300]
                return times, response

            await timed("/")  # warm caches: templates, statements, sessions
            page_times, page = await timed("/")
            api_times, _ = await timed("/api/v1/projects?limit=100&sort=-updated_at")
            assert page.text.count('href="/projects/') >= PROJECTS, "the overview does not list every project"
            assets = sorted(set(ASSET.findall(page.text)))
            asset_bytes = 0
            for asset in assets:
                asset_bytes += len((await client.get(asset)).content)
    return {
        "page_ms": statistics.median(page_times),
        "page_p95": sorted(page_times)[int(len(page_times) * 0.95) - 1],
        "api_ms": statistics.median(api_times),
        "html": len(page.content),
        "assets": asset_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite", "both"), default="both")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="td-bench-dashboard-"))
    ok = True
    try:
        for backend in ("postgresql", "sqlite") if args.backend == "both" else (args.backend,):
            server = None
            if backend == "postgresql":
                server_url = services.postgres_server_url()
                if server_url is None:
                    print("[postgresql] no server; skipped")
                    continue
                server = PostgresServer(server_url)
                url = server.create_database()
            else:
                url = f"sqlite+aiosqlite:///{root / 'bench.db'}"
            try:
                r = asyncio.run(measure(url, root / backend, args.requests))
            finally:
                if server is not None:
                    server.drop_all()
            total = r["html"] + r["assets"]
            print(
                f"[{backend}] overview, {PROJECTS} projects: median {r['page_ms']:.1f} ms, p95 {r['page_p95']:.1f} ms "
                f"(baseline GET /api/v1/projects?limit=100: {r['api_ms']:.1f} ms); "
                f"HTML {r['html'] / 1024:.1f} KB + assets {r['assets'] / 1024:.1f} KB = {total / 1024:.1f} KB"
            )
            ok = ok and r["page_ms"] < 100 and total < 300 * 1024
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("within the targets (< 100 ms, < 300 KB)" if ok else "OVER a target (< 100 ms, < 300 KB)")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
