"""10,000 events published through the API end up in ``events_mirror`` exactly once: steadily, with
the broker restarted mid-stream, with the kernel process SIGKILLed mid-stream and started again, and
with two kernel instances sharing the work. PostgreSQL and a private Mosquitto (the machine's broker
is shared, and these tests restart theirs)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events.batches import Batches
from tests.events.conftest import EVENTS_ONLY, TUNED
from tests.events.helpers import Recorder, eventually, rows, scalar
from tests.support.services import PrivateMosquitto, free_port

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])
BATCHES, SIZE = 100, 100
TOTAL = BATCHES * SIZE
ROOT = Path(__file__).resolve().parents[2]


async def post_batches(
    base_url: str, batches: range, transport: httpx.AsyncBaseTransport | None = None, workers: int = 4
) -> set[str]:
    """Post every batch, retrying through outages; a 409 means an earlier attempt committed it."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    acknowledged: set[str] = set()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            while True:
                try:
                    response = await client.post(f"/api/v1/test/batches/{batch}?size={SIZE}")
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                    continue
                if response.status_code == 201:
                    acknowledged.update(response.json()["ids"])
                    break
                assert response.status_code == 409, response.text
                break

    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return acknowledged


async def check_exactly_once(kernel: Any, acknowledged: set[str], total: int = TOTAL) -> None:
    """Every committed event is mirrored once, and only committed events are."""

    async def all_mirrored() -> bool:
        return await scalar(kernel, "SELECT count(*) FROM events_mirror") >= total

    await eventually(all_mirrored, seconds=120, interval=0.2)
    await asyncio.sleep(0.5)
    assert await scalar(kernel, "SELECT count(*) FROM td_test_batches") == total // SIZE  # committed batches
    assert await scalar(kernel, "SELECT count(*) FROM events_mirror") == total
    assert await scalar(kernel, "SELECT count(DISTINCT id) FROM events_mirror") == total
    # every (batch, n) of every committed batch, once: exactly the committed events
    pairs = "SELECT count(DISTINCT (payload->>'batch') || '/' || (payload->>'n')) FROM events_mirror"
    assert await scalar(kernel, pairs) == total
    mirrored = {str(row.id) for row in await rows(kernel, "SELECT id FROM events_mirror")}
    assert acknowledged <= mirrored
    assert await scalar(kernel, "SELECT count(*) FROM event_outbox") == 0  # nothing left undelivered


def scale_settings(bus_settings: Callable[..., Any], url: str, **overrides: Any) -> Any:
    return bus_settings(bus_url=url, bus_reconnect_max_seconds=1.0, **overrides)


async def test_ten_thousand_events_exactly_once(bus_settings, private_broker, app_client_for):
    recorder = Recorder("tracker/events/projects/#", "count")
    settings = scale_settings(bus_settings, private_broker.url)
    async with app_client_for(settings, [("batches", Batches()), ("rec", recorder)]) as (client, kernel):
        started = time.monotonic()
        acknowledged = await post_batches("http://testserver", range(BATCHES), client._transport)
        await check_exactly_once(kernel, acknowledged)

        async def all_handled() -> bool:
            return len(recorder.by_id) == TOTAL

        await eventually(all_handled, seconds=30)
        assert set(recorder.by_id.values()) == {1}
        elapsed = time.monotonic() - started
        print(f"\n10,000 events posted, mirrored and handled in {elapsed:.1f}s")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "killed"])
async def test_broker_restart_mid_stream(bus_settings, app_client_for, how):
    """A graceful restart keeps the broker's queues (persistence); a killed broker loses what it had
    not saved, and the relay publishes again what no consumer stored."""
    broker = PrivateMosquitto(TUNED).start()
    try:
        settings = scale_settings(bus_settings, broker.url, bus_redeliver_after_seconds=2.0)
        async with app_client_for(settings, [("batches", Batches())]) as (client, kernel):
            posting = asyncio.create_task(post_batches("http://testserver", range(BATCHES), client._transport, 2))

            async def some_mirrored() -> bool:
                return await scalar(kernel, "SELECT count(*) FROM events_mirror") >= 2000

            await eventually(some_mirrored, seconds=60)
            broker.stop(how)
            down_at = await scalar(kernel, "SELECT count(*) FROM events_mirror")
            await asyncio.sleep(1.5)  # the API keeps committing; events wait in the outbox
            broker.start()
            acknowledged = await posting
            assert down_at < TOTAL
            await check_exactly_once(kernel, acknowledged)
    finally:
        broker.close()


async def test_kernel_killed_mid_stream_and_restarted(bus_settings, tmp_path):
    broker = PrivateMosquitto(TUNED).start()
    settings = scale_settings(bus_settings, broker.url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_") or k.startswith(("TD_TEST_", "TD_REQ"))}
    env.update(
        TD_DATABASE_URL=settings.database_url,
        TD_BUS_URL=broker.url,
        TD_BUS_CLIENT_ID=settings.bus_client_id,
        TD_BUS_SHARE_GROUP=settings.bus_share_group,
        TD_DATA_DIR=str(tmp_path / "data"),
        TD_MIGRATE_ON_START="true",
        TD_LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    log = tmp_path / "kernel.log"

    def start_kernel() -> subprocess.Popen:
        with log.open("a") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.events.driver", str(port)], env=env, stdout=out, stderr=out, cwd=ROOT
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=0.5).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    from kernel.app import Kernel

    observer = Kernel(settings, builtins=EVENTS_ONLY)  # reads the database; runs nothing
    proc = await asyncio.to_thread(start_kernel)
    try:
        posting = asyncio.create_task(post_batches(f"http://127.0.0.1:{port}", range(BATCHES)))

        async def some_mirrored() -> bool:
            return await scalar(observer, "SELECT count(*) FROM events_mirror") >= 2000

        await eventually(some_mirrored, seconds=60)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        killed_at = await scalar(observer, "SELECT count(*) FROM events_mirror")
        await asyncio.sleep(0.5)
        proc = await asyncio.to_thread(start_kernel)
        acknowledged = await posting
        assert killed_at < TOTAL
        await check_exactly_once(observer, acknowledged)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        await observer.db.dispose()
        broker.close()


async def test_two_instances_each_event_mirrored_and_handled_once(bus_settings, private_broker, app_client_for):
    first = scale_settings(bus_settings, private_broker.url)
    second = scale_settings(
        bus_settings, private_broker.url, database_url=first.database_url, bus_share_group=first.bus_share_group
    )
    assert first.bus_client_id != second.bus_client_id
    a, b = Recorder("tracker/events/projects/#", "count"), Recorder("tracker/events/projects/#", "count")
    async with (
        app_client_for(first, [("batches", Batches()), ("rec", a)]) as (client_a, kernel),
        app_client_for(second, [("batches", Batches()), ("rec", b)]) as (client_b, other),
    ):
        acknowledged = set().union(
            *await asyncio.gather(
                post_batches("http://testserver", range(0, BATCHES, 2), client_a._transport, 2),
                post_batches("http://testserver", range(1, BATCHES, 2), client_b._transport, 2),
            )
        )
        await check_exactly_once(kernel, acknowledged)

        async def all_handled() -> bool:
            return len(a.by_id) + len(b.by_id) >= TOTAL

        await eventually(all_handled, seconds=30)
        await asyncio.sleep(0.5)
        assert set(a.by_id.values()) == set(b.by_id.values()) == {1}  # handled once per instance...
        assert not set(a.by_id) & set(b.by_id)  # ...and by one instance only
        assert len(a.by_id) + len(b.by_id) == TOTAL
        assert a.by_id and b.by_id  # the shared subscription split the work
        assert await scalar(kernel, "SELECT count(*) FROM event_claims") == 0
        published = [k.metrics.get_sample_value("taylordash_events_published_total") for k in (kernel, other)]
        assert sum(published) == TOTAL  # the relays never published an event twice
