"""Export → import round trip of a project with 1,000 components and 50,000 tasks, through the API.

Self-contained like bench_projects.py (fresh PostgreSQL database, API token from the auth plugin's
CLI, ``taylordash serve`` on a free port, database dropped at the end). Steps, each timed:
import a generated document; export it (every given field must come back as given); delete the
project (one transaction, one event per object); import the export again (restore: same ids);
export again — the two exports must be identical apart from ``exported_at``.

    .venv/bin/python tests/bench/roundtrip_projects.py [--components 1000] [--tasks 50000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_projects import BIN, cli, credentials, free_port, fresh_database, now_text, product_env, server


def document(components: int, tasks: int, seed: int = 11) -> dict[str, Any]:
    """A varied project: every optional field used somewhere, a DAG of dependencies."""
    rng = random.Random(seed)
    stamp = now_text()
    pid = str(uuid.uuid4())
    comps = []
    for i in range(components):
        comps.append(
            {
                "id": str(uuid.uuid4()),
                "project_id": pid,
                "name": f'Component {i} — «ünïcode» "quoted"',
                "description": f"line one\nline two of {i}",
                "status": rng.choice(["planned", "in_progress", "blocked", "done"]),
                "owner": rng.choice(["ada", "grace", None]),
                "labels": rng.sample(["core", "ui", "infra", "edge"], rng.randint(0, 3)),
                "metadata": {"rank": i, "ratio": round(rng.random(), 6), "nested": {"ok": True, "list": [1, None]}},
                "position": {"x": rng.uniform(-500, 500), "y": rng.uniform(-500, 500)} if i % 3 else None,
                "estimate_minutes": rng.choice([None, rng.randint(10, 5000)]),
                "due_date": rng.choice([None, f"2031-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"]),
                "completed_at": None,
                "created_at": stamp,
                "updated_at": stamp,
                "version": rng.randint(1, 5),
                "depends_on": [],
            }
        )
    for i in range(1, components):
        for j in rng.sample(range(i), min(i, 2)):
            comps[i]["depends_on"].append(comps[j]["id"])
    task_docs = []
    for n in range(tasks):
        component = comps[n % components]
        done = rng.random() < 0.3
        task_docs.append(
            {
                "id": str(uuid.uuid4()),
                "project_id": pid,
                "component_id": component["id"],
                "title": f"Task {n}",
                "description": "" if n % 2 else f"do thing {n}",
                "status": "done" if done else rng.choice(["todo", "in_progress", "blocked", "cancelled"]),
                "progress": 100 if done else rng.randint(0, 99),
                "assignee": rng.choice(["ada", "grace", "linus", None]),
                "labels": rng.sample(["ui", "api", "db", "ops"], rng.randint(0, 2)),
                "metadata": {"n": n} if n % 5 == 0 else {},
                "estimate_minutes": rng.choice([None, rng.randint(15, 480)]),
                "due_date": rng.choice([None, "2031-03-15"]),
                "completed_at": stamp if done else None,
                "created_at": stamp,
                "updated_at": stamp,
                "version": rng.randint(1, 3),
            }
        )
    project = {
        "id": pid,
        "name": "Round trip",
        "description": "generated",
        "status": "active",
        "owner": "ada",
        "labels": ["bench"],
        "metadata": {"seed": seed},
        "start_date": "2030-01-01",
        "due_date": "2032-01-01",
        "created_at": stamp,
        "updated_at": stamp,
        "version": 3,
    }
    return {"format": "taylordash.project/1", "project": project, "components": comps, "tasks": task_docs}


def given_fields_kept(given: dict[str, Any], exported: dict[str, Any]) -> list[str]:
    """Fields of the input document that did not come back unchanged (floats compared exactly)."""
    problems = []
    for key, value in given["project"].items():
        if exported["project"][key] != value:
            problems.append(f"project.{key}")
    for kind in ("components", "tasks"):
        by_id = {item["id"]: item for item in exported[kind]}
        if len(by_id) != len(given[kind]):
            problems.append(f"{kind}: {len(by_id)} exported, {len(given[kind])} given")
        for item in given[kind]:
            out = by_id.get(item["id"], {})
            for key, value in item.items():
                expected = sorted(value) if key == "depends_on" else value
                if out.get(key) != expected:
                    problems.append(f"{kind}[{item['id']}].{key}: {value!r} -> {out.get(key)!r}")
    return problems


def timed(label: str, fn: Any, times: dict[str, float]) -> Any:
    start = time.perf_counter()
    result = fn()
    times[label] = time.perf_counter() - start
    print(f"{label:44} {times[label]:7.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=50_000)
    args = parser.parse_args()
    import os

    server_url = os.environ.get("TD_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    given = document(args.components, args.tasks)
    body = json.dumps(given).encode()
    print(f"document: {args.components} components, {args.tasks} tasks, {len(body) / 1e6:.1f} MB")
    times: dict[str, float] = {}
    with fresh_database(server_url) as database_url, tempfile.TemporaryDirectory() as data:
        env = product_env(database_url, Path(data))
        cli(env, "db", "upgrade")
        headers, auth_kind = credentials(env)
        port = free_port()
        command = [str(BIN / "taylordash"), "serve", "--port", str(port)]
        with (
            server(command, env, port, "/health/live") as base,
            httpx.Client(base_url=base, headers=headers, timeout=1800) as client,
        ):
            pid = given["project"]["id"]
            json_type = {"content-type": "application/json"}

            def post(content: bytes) -> None:
                response = client.post("/api/v1/projects/import", content=content, headers=json_type)
                assert response.status_code == 201, response.text[:1000]

            def export() -> dict[str, Any]:
                response = client.get(f"/api/v1/projects/{pid}/export")
                assert response.status_code == 200, response.text[:1000]
                return response.json()

            timed("import (JSON, 1 transaction, 1 event/object)", lambda: post(body), times)
            first = timed("export (JSON)", export, times)
            problems = given_fields_kept(given, first)
            timed("delete (cascade, 1 event/object)", lambda: client.delete(f"/api/v1/projects/{pid}"), times)
            timed("import the export (restore, same ids)", lambda: post(json.dumps(first).encode()), times)
            second = timed("export again", export, times)
        first.pop("exported_at")
        second.pop("exported_at")
        identical = first == second
        print(f"auth: {auth_kind}")
        print(f"given fields kept: {'yes' if not problems else 'NO: ' + '; '.join(problems[:10])}")
        print(f"export -> import -> export identical: {'yes' if identical else 'NO'}")
        trip = times["export (JSON)"] + times["import the export (restore, same ids)"] + times["export again"]
        print(f"round trip (export + import + export): {trip:.1f} s")
        if problems or not identical:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
