"""Three ``taylordash serve`` processes of one deployment on different ports, sharing the real
PostgreSQL (a fresh database) and the real Mosquitto, with a client spreading requests across them:

- every event is mirrored once and every handler runs once, by one instance of the three;
- a logout on one instance is refused by the others at their next request;
- a live (SSE) client of instance C sees changes made through instance A;
- a plugin enabled or disabled through one instance is applied by all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import _dsn
from tests.events.helpers import eventually
from tests.scanner.builders import SAMPLES, build
from tests.support.cluster import PASSWORD, RoundRobin, cluster, deployment_env, prepare, unique_group

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]
PROJECTS = 30
NAMES = ["a", "b", "c"]


def test_three_instances_behave_as_one(postgres, mqtt_broker, tmp_path: Path):
    database_url = postgres.create_database()
    ids = asyncio.run(prepare(database_url, tmp_path / "setup", {"root": "admin", "victim": "viewer"}))
    shared = deployment_env(
        database_url,
        mqtt_broker,
        tmp_path,
        unique_group("scaleout"),
        TD_PLUGINS__EVENTS__HEARTBEAT_SECONDS="0.5",
        TD_PLUGINS__EVENTS__LIVE_POLL_SECONDS="0.1",
        # An instance trusts its cached plugin states for ten minutes: only the bus can refresh them.
        TD_PLUGINS__PLUGINS__STATE_CACHE_SECONDS="600",
    )
    package = build("wheel", SAMPLES / "benign" / "burndown_chart", tmp_path / "package")
    with cluster(shared, NAMES, tmp_path) as urls:
        asyncio.run(scenario(urls, database_url, ids["victim"], package))


async def scenario(urls: list[str], database_url: str, victim_id: str, package: Path) -> None:
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in urls]
    try:
        a, c = clients[0], clients[2]
        admin = await login(a, "root")
        for client in clients:
            client.headers.update(admin)
        async with live_stream(c, "tracker/events/projects/#") as seen:
            created = await spread_writes(RoundRobin(clients))
            through_a = {p for p, instance in created.items() if instance == 0}
            await eventually(lambda: _async(through_a <= set(seen)), seconds=30, interval=0.1)
        await check_exactly_once(clients, database_url, created)
        await check_logout_everywhere(clients, victim_id)
        await check_plugin_state_everywhere(clients, package)
    finally:
        for client in clients:
            await client.aclose()


async def _async(value: Any) -> Any:
    return value


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@contextlib.asynccontextmanager
async def live_stream(client: httpx.AsyncClient, topic: str) -> AsyncIterator[dict[str, str]]:
    """Follow the instance's SSE stream; yields ``{subject_id: event type}`` as events arrive, once the
    stream is attached (its first heartbeat came)."""
    seen: dict[str, str] = {}
    attached = asyncio.Event()

    async def follow() -> None:
        async with client.stream("GET", "/api/v1/events/stream", params={"topic": topic}) as response:
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                attached.set()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    seen[event["subject_id"]] = event["type"]

    task = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(asyncio.shield(attached.wait()), 30)
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def spread_writes(balancer: RoundRobin) -> dict[str, int]:
    """Create projects with a component and a task each, change them and delete the tasks, every request
    through the next instance in turn; ``{project id: index of the instance that created it}``."""
    created: dict[str, int] = {}

    async def one(n: int) -> None:
        client = balancer.next()
        project = await client.post("/api/v1/projects", json={"name": f"scale-out {n}"})
        assert project.status_code == 201, project.text
        project_id = project.json()["id"]
        created[project_id] = balancer.clients.index(client)
        changed = await balancer.next().patch(f"/api/v1/projects/{project_id}", json={"status": "active"})
        assert changed.status_code == 200, changed.text
        component = await balancer.next().post(f"/api/v1/projects/{project_id}/components", json={"name": "api"})
        assert component.status_code == 201, component.text
        task = await balancer.next().post(f"/api/v1/components/{component.json()['id']}/tasks", json={"title": "t"})
        assert task.status_code == 201, task.text
        deleted = await balancer.next().delete(f"/api/v1/tasks/{task.json()['id']}")
        assert deleted.status_code == 204, deleted.text
        shown = await balancer.next().get(f"/api/v1/projects/{project_id}")
        assert shown.json()["status"] == "active"

    for start in range(0, PROJECTS, 6):
        await asyncio.gather(*(one(n) for n in range(start, min(start + 6, PROJECTS))))
    return created


HANDLED = re.compile(
    r'^taylordash_events_handled_total\{handler="storage.remove-attachments",outcome="succeeded"\} (\S+)$', re.M
)
PUBLISHED = re.compile(r"^taylordash_events_published_total (\S+)$", re.M)


async def metric(client: httpx.AsyncClient, pattern: re.Pattern[str]) -> float:
    """The sample matched by ``pattern`` in the instance's ``/metrics`` (0 before the first one)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    found = pattern.search(response.text)
    return float(found.group(1)) if found else 0.0


async def check_exactly_once(clients: list[httpx.AsyncClient], database_url: str, created: dict[str, int]) -> None:
    conn = await asyncpg.connect(_dsn(database_url))
    try:

        async def drained() -> bool:
            return await conn.fetchval("SELECT count(*) FROM event_outbox") == 0

        await eventually(drained, seconds=60, interval=0.2)
        rows = await conn.fetch(
            "SELECT type, subject_id, count(*) AS n, count(DISTINCT id) AS ids FROM events_mirror "
            "WHERE subject_id = ANY($1::text[]) GROUP BY type, subject_id",
            list(created),
        )
        per_project = {(r["type"], r["subject_id"]): (r["n"], r["ids"]) for r in rows}
        for project_id in created:
            for kind in ("projects.created", "projects.updated"):
                assert per_project.get((kind, project_id)) == (1, 1), (kind, project_id, per_project)
        ours = await conn.fetchval("SELECT count(*) FROM events_mirror WHERE type = 'tasks.deleted'")
        assert ours >= PROJECTS
        assert await conn.fetchval("SELECT count(*) FROM events_mirror") == await conn.fetchval(
            "SELECT count(DISTINCT id) FROM events_mirror"
        )
        assert await conn.fetchval("SELECT count(*) FROM dlq_events") == 0

        async def all_handled() -> list[float] | None:
            runs = [await metric(client, HANDLED) for client in clients]
            return runs if sum(runs) >= ours else None

        handled = await eventually(all_handled, seconds=60, interval=0.2)
        await asyncio.sleep(0.5)
        again = [await metric(client, HANDLED) for client in clients]
        assert handled == again and sum(handled) == ours  # each deletion handled once, by one instance
        assert sum(1 for runs in handled if runs) >= 2, handled  # the shared subscription spread the work
        # The relays published each committed event once: never more than the mirror holds (which
        # may also hold events of other deployments on the same broker).
        published = sum([await metric(client, PUBLISHED) for client in clients])
        assert PROJECTS * 5 <= published <= await conn.fetchval("SELECT count(*) FROM events_mirror")
    finally:
        await conn.close()


async def check_logout_everywhere(clients: list[httpx.AsyncClient], victim_id: str) -> None:
    for i, here in enumerate(clients):
        others = clients[:i] + clients[i + 1 :]
        victim = await login(here, "victim")
        for there in others:  # now cached by every other instance for five minutes
            shown = await there.get("/api/v1/auth/me", headers=victim)
            assert shown.status_code == 200 and shown.json()["id"] == victim_id
        assert (await here.post("/api/v1/auth/logout", headers=victim)).status_code == 204
        for there in others:
            refused = await there.get("/api/v1/auth/me", headers=victim)
            assert refused.status_code == 401, refused.text


async def check_plugin_state_everywhere(clients: list[httpx.AsyncClient], package: Path) -> None:
    a, b, c = clients
    data = await asyncio.to_thread(package.read_bytes)
    uploaded = await b.post("/api/v1/plugins", files={"file": (package.name, data, "application/octet-stream")})
    assert uploaded.status_code == 201, uploaded.text
    name = uploaded.json()["name"]

    async def active_everywhere(wanted: bool) -> bool:
        shown = [await client.get(f"/api/v1/plugins/{name}") for client in clients]
        return all(s.json()["active"] is wanted and s.json()["enabled"] is wanted for s in shown)

    assert await active_everywhere(False)  # every instance has cached "not enabled"
    assert (await a.post(f"/api/v1/plugins/{name}/enable")).json()["active"] is True
    await eventually(lambda: active_everywhere(True), seconds=15, interval=0.1)
    assert (await c.post(f"/api/v1/plugins/{name}/disable")).json()["active"] is False
    await eventually(lambda: active_everywhere(False), seconds=15, interval=0.1)

    # A kernel plugin's choice is shared too; every instance applies it at its next start.
    assert (await b.post("/api/v1/plugins/storage/disable")).json()["restart_required"] is True
    for client in clients:
        shown = (await client.get("/api/v1/plugins/storage")).json()
        assert shown["enabled"] is False and shown["active"] is True
    assert (await c.post("/api/v1/plugins/storage/enable")).json()["enabled"] is True
