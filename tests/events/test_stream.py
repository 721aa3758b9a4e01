"""The live stream (server-sent events) through a real HTTP server: delivery, permission filtering,
``Last-Event-ID`` resume and heartbeats, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn

from kernel.app import create_app
from sdk import Event
from tests.events.conftest import WITH_AUTH
from tests.events.helpers import ADMIN, VIEWER
from tests.support.plugins import HeaderAuth
from tests.support.services import free_port


@pytest.fixture
def stream_settings(bus_settings, database_for):
    return bus_settings(database_url=database_for("with-auth"))


@asynccontextmanager
async def serving(settings) -> AsyncIterator[tuple[str, object]]:
    app = create_app(settings, [("testauth", HeaderAuth())], builtins=WITH_AUTH, configure_logs=False)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.kernel
    finally:
        server.should_exit = True
        await task


class Frames:
    """Reads an SSE response: events as ``(id, data)``, heartbeats counted."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()
        self.heartbeats = 0

    async def next_event(self, seconds: float = 5.0) -> tuple[int, dict]:
        async with asyncio.timeout(seconds):
            event_id, data = None, None
            async for line in self.lines:
                if line.startswith(": heartbeat"):
                    self.heartbeats += 1
                elif line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and data is not None:
                    return event_id, data
        raise AssertionError("stream ended")

    async def idle(self, seconds: float) -> None:
        """Read for ``seconds`` expecting nothing but heartbeats."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for line in self.lines:
                    if line.startswith(": heartbeat"):
                        self.heartbeats += 1
                    assert not line.startswith("data: "), line

    async def events(self, count: int) -> list[tuple[int, dict]]:
        return [await self.next_event() for _ in range(count)]


async def _publish(kernel, *events: Event) -> None:
    async with kernel.db.session() as session:
        for event in events:
            await kernel.publish(session, event)
        await session.commit()


def _event(type_: str, n: int) -> Event:
    return Event.create(type=type_, source="t", subject_id=f"s{n}", payload={"n": n})


async def test_stream_delivers_filters_and_resumes(stream_settings):
    async with serving(stream_settings) as (base, kernel), httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with client.stream("GET", "/api/v1/events/stream", headers=VIEWER) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            frames = Frames(response)
            await asyncio.sleep(0.2)
            await _publish(kernel, _event("tasks.created", 1), _event("auth.login", 2), _event("projects.created", 3))
            got = await frames.events(2)
            assert [data["payload"]["n"] for _, data in got] == [1, 3]  # the auth event is for admins only
            assert got[0][0] < got[1][0] and got[0][1]["seq"] == got[0][0]
            first_id = got[0][0]
            await frames.idle(1.0)
            assert frames.heartbeats >= 2

        await _publish(kernel, _event("tasks.updated", 4))  # while nobody listens
        headers = {**ADMIN, "Last-Event-ID": str(first_id)}
        async with client.stream("GET", "/api/v1/events/stream", headers=headers) as response:
            frames = Frames(response)
            resumed = await frames.events(3)
            assert [data["payload"]["n"] for _, data in resumed] == [2, 3, 4]  # the admin sees auth events
            await _publish(kernel, _event("tasks.deleted", 5))
            assert (await frames.next_event())[1]["payload"]["n"] == 5

        query = "/api/v1/events/stream?topic=tracker/events/tasks/%23&last_event_id=0"
        async with client.stream("GET", query, headers=ADMIN) as response:
            frames = Frames(response)
            assert [data["payload"]["n"] for _, data in await frames.events(3)] == [1, 4, 5]


async def test_stream_needs_a_principal_and_a_valid_resume_point(stream_settings):
    async with serving(stream_settings) as (base, _), httpx.AsyncClient(base_url=base, timeout=10) as client:
        assert (await client.get("/api/v1/events/stream")).status_code == 401
        bad = await client.get("/api/v1/events/stream", headers={**VIEWER, "Last-Event-ID": "abc"})
        assert bad.status_code == 400 and bad.json()["type"].endswith("invalid-last-event-id")
        assert (await client.get("/api/v1/events/stream?topic=a/%23/b", headers=VIEWER)).status_code == 422
