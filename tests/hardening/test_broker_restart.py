"""Mosquitto goes away while the API writes: the API keeps answering (events wait in the outbox),
and once the broker is back the outbox drains into the mirror. The exactly-once accounting of a
broker restart mid-stream is tests/events/test_scale.py; this is the API's side of it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from kernel.app import create_app
from tests.conftest import running
from tests.hardening.support import PrivatePostgres, hardening_settings, mint_credentials
from tests.support.services import PrivateMosquitto


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _until(check, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_broker_restart_while_the_api_writes(
    private_pg: PrivatePostgres, private_broker: PrivateMosquitto, tmp_path: Path
) -> None:
    url = await asyncio.to_thread(private_pg.create_database, "broker_restart")
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    settings = hardening_settings(
        data_dir=tmp_path / "data", database_url=url, bus_url=private_broker.url, bus_reconnect_max_seconds=1.0
    )
    headers = (await asyncio.to_thread(mint_credentials, settings)).headers("admin")
    unsent = "SELECT count(*) FROM event_outbox WHERE sent_at IS NULL"
    mirrored = "SELECT count(*) FROM events_mirror WHERE type = 'projects.created'"

    async with running(create_app(settings, configure_logs=False)) as client:

        async def create(names: range) -> None:
            for n in names:
                response = await client.post("/api/v1/projects", json={"name": f"p{n}"}, headers=headers)
                assert response.status_code == 201, response.text

        await create(range(10))
        await _until(lambda: _equal(dsn, mirrored, 10))

        await asyncio.to_thread(private_broker.stop)
        await create(range(10, 40))  # the API does not depend on the broker
        await asyncio.sleep(1.0)
        assert await _count(dsn, unsent) >= 30  # the events wait in the outbox
        assert await _count(dsn, mirrored) == 10

        await asyncio.to_thread(private_broker.start)
        await _until(lambda: _equal(dsn, mirrored, 40))
        assert await _count(dsn, unsent) == 0
        metrics = await client.get("/metrics", headers=headers)
        assert "taylordash_events_transport_connected 1.0" in metrics.text


async def _equal(dsn: str, sql: str, expected: int) -> bool:
    return await _count(dsn, sql) == expected
