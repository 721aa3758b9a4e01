"""SIGTERM to ``taylordash serve`` under load: requests in flight finish, the outbox is flushed to
the broker, and the process exits 0 within 10 s. PostgreSQL and Mosquitto of the test's own."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.hardening.support import PrivatePostgres, Served, hardening_settings, mint_credentials
from tests.support.services import PrivateMosquitto

SLOW_TASKS = 400  # an import big enough to be still running when the signal arrives
STEADY_WORKERS = 6


def _document(tasks: int) -> dict[str, Any]:
    stamp = "2026-01-01T00:00:00Z"
    project = "00000000-0000-4000-8000-000000000001"
    component = "00000000-0000-4000-8000-000000000002"
    common = {"created_at": stamp, "updated_at": stamp}
    return {
        "format": "taylordash.project/1",
        "project": {"id": project, "name": "slow", **common},
        "components": [{"id": component, "project_id": project, "name": "c", **common}],
        "tasks": [
            {
                "id": f"00000000-0000-4000-9000-{n:012d}",
                "project_id": project,
                "component_id": component,
                "title": f"t{n}",
                **common,
            }
            for n in range(tasks)
        ],
    }


async def _outbox(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        unsent = await conn.fetchval("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL")
        projects = await conn.fetchval("SELECT count(*) FROM projects")
    finally:
        await conn.close()
    return unsent, projects


async def test_sigterm_under_load(private_pg: PrivatePostgres, private_broker: PrivateMosquitto, tmp_path: Path):
    url = await asyncio.to_thread(private_pg.create_database, "sigterm")
    settings = hardening_settings(data_dir=tmp_path / "data", database_url=url, bus_url=private_broker.url)
    credentials = await asyncio.to_thread(mint_credentials, settings)
    headers = credentials.headers("admin")
    server = await asyncio.to_thread(lambda: Served(settings, tmp_path / "serve.log").wait_ready())
    document = _document(SLOW_TASKS)
    steady: list[httpx.Response | Exception] = []
    stop = asyncio.Event()
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as client:

            async def slow(n: int) -> httpx.Response:
                body = {**document, "project": {**document["project"], "name": f"slow-{n}"}}
                return await client.post("/api/v1/projects/import?mode=copy", json=body)

            async def worker(n: int) -> None:
                index = 0
                while not stop.is_set():
                    index += 1
                    try:
                        steady.append(await client.post("/api/v1/projects", json={"name": f"steady-{n}-{index}"}))
                    except httpx.TransportError as exc:  # sent after the server stopped accepting
                        steady.append(exc)
                        await asyncio.sleep(0.05)

            workers = [asyncio.create_task(worker(n)) for n in range(STEADY_WORKERS)]
            deadline = time.monotonic() + 60
            while sum(isinstance(r, httpx.Response) for r in steady) < 30:
                assert time.monotonic() < deadline, "no load reached the server"
                await asyncio.sleep(0.05)
            slows = [asyncio.create_task(slow(n)) for n in range(3)]
            await asyncio.sleep(0.5)  # the imports are being written
            server.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = await asyncio.to_thread(server.proc.wait, 30)
            exited = time.monotonic() - signalled
            stop.set()
            finished = await asyncio.gather(*slows, return_exceptions=True)
            await asyncio.gather(*workers)
    finally:
        server.stop()

    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log
    assert exited < 10, f"exit took {exited:.1f}s\n{log}"
    for response in finished:
        assert isinstance(response, httpx.Response), f"an in-flight import was cut: {response!r}\n{log}"
        assert response.status_code == 201, response.text
    answers = [r for r in steady if isinstance(r, httpx.Response)]
    assert answers and all(r.status_code == 201 for r in answers), {r.status_code for r in answers}
    unsent, projects = await _outbox(url.replace("postgresql+asyncpg", "postgresql"))
    assert projects == len(answers) + len(finished)
    assert unsent == 0, f"{unsent} events left in the outbox at exit\n{log}"
