"""PostgreSQL goes away while the API writes: requests fail with 503 problem+json (never 500), the
kernel recovers on its own once the database is back, and a request's writes are all or nothing.

A private PostgreSQL server (the machine's one is shared and is never restarted)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from kernel.app import create_app
from tests.conftest import running
from tests.hardening.support import PrivatePostgres, hardening_settings, mint_credentials

COMPONENTS, TASKS_PER_COMPONENT = 3, 4
WRITERS = 4


async def _poll(check: Any, seconds: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


async def _export_of_a_seed_project(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A project with components and tasks, exported: the document each write imports again."""
    project = (await client.post("/api/v1/projects", json={"name": "seed"}, headers=headers)).json()
    for c in range(COMPONENTS):
        component = await client.post(
            f"/api/v1/projects/{project['id']}/components", json={"name": f"c{c}"}, headers=headers
        )
        assert component.status_code == 201, component.text
        for t in range(TASKS_PER_COMPONENT):
            task = await client.post(
                f"/api/v1/components/{component.json()['id']}/tasks", json={"title": f"t{t}"}, headers=headers
            )
            assert task.status_code == 201, task.text
    exported = await client.get(f"/api/v1/projects/{project['id']}/export", headers=headers)
    assert exported.status_code == 200, exported.text
    return exported.json()


async def _counts(dsn: str) -> dict[str, tuple[int, int]]:
    """``{project name: (components, tasks)}`` of every imported project, read straight from the tables."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            """SELECT p.name,
                      (SELECT count(*) FROM components c WHERE c.project_id = p.id) AS components,
                      (SELECT count(*) FROM tasks t WHERE t.project_id = p.id) AS tasks
               FROM projects p WHERE p.name LIKE 'fault-%'"""
        )
    finally:
        await conn.close()
    return {row["name"]: (row["components"], row["tasks"]) for row in found}


@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["shutdown", "crash"])
async def test_database_restart_during_writes(private_pg: PrivatePostgres, tmp_path: Path, mode: str) -> None:
    url = await asyncio.to_thread(private_pg.create_database, f"restart_{mode}")
    settings = hardening_settings(data_dir=tmp_path / "data", database_url=url)
    credentials = await asyncio.to_thread(mint_credentials, settings)
    headers = credentials.headers("admin")
    outcomes: list[tuple[str, httpx.Response, str]] = []  # (project name, response, phase)
    phase = "before"
    stop = asyncio.Event()

    async with running(create_app(settings, configure_logs=False)) as client:
        document = await _export_of_a_seed_project(client, headers)

        async def writer(number: int) -> None:
            index = 0
            while not stop.is_set():
                name = f"fault-{number}-{index}"
                index += 1
                body = {**document, "project": {**document["project"], "name": name}}
                started_in = phase
                response = await client.post("/api/v1/projects/import?mode=copy", json=body, headers=headers)
                outcomes.append((name, response, started_in if started_in == phase else "transition"))
                if response.status_code != 201:
                    await asyncio.sleep(0.05)

        def count(status: int, in_phase: str) -> int:
            return sum(1 for _, r, p in outcomes if r.status_code == status and p == in_phase)

        writers = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
        try:
            await _poll(lambda: count(201, "before") >= 8, what="writes before the outage")
            phase = "transition"
            await asyncio.to_thread(private_pg.stop, mode)
            phase = "down"
            await _poll(lambda: count(503, "down") >= 8, what="503 answers while the database is down")
            phase = "transition"
            await asyncio.to_thread(private_pg.start)
            phase = "after"
            await _poll(lambda: count(201, "after") >= 8, seconds=90, what="writes once the database is back")
        finally:
            stop.set()
            await asyncio.gather(*writers)

        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text

    unexpected = [(name, r.status_code, r.text[:300]) for name, r, _ in outcomes if r.status_code not in (201, 503)]
    assert not unexpected, unexpected
    for _, response, _ in outcomes:
        if response.status_code == 503:
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"] == "urn:taylordash:problem:service-unavailable", problem
            assert problem["status"] == 503 and response.headers.get("retry-after")
    assert all(p != "down" for _, r, p in outcomes if r.status_code == 201), "a write succeeded with no database"

    # All or nothing: every project that exists has all its components and tasks.
    expected = (COMPONENTS, COMPONENTS * TASKS_PER_COMPONENT)
    stored = await _counts(url.replace("postgresql+asyncpg", "postgresql"))
    partial = {name: counts for name, counts in stored.items() if counts != expected}
    assert not partial, f"partial writes: {partial}"
    acknowledged = {name for name, r, _ in outcomes if r.status_code == 201}
    assert acknowledged <= set(stored), acknowledged - set(stored)
