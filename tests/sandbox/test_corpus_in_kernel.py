"""The escape corpus against a running kernel: each attempt, run by a sandboxed plugin's route, is
refused with a stored violation while the kernel keeps answering /health/live."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from kernel.app import create_app
from tests.conftest import running
from tests.sandbox.conftest import ADMIN, ESCAPES, VIEWER, eventually, install, plugins, sandbox_settings, violations
from tests.sandbox.conftest import worker as worker_of

NAMES = sorted(p.stem for p in ESCAPES.glob("*.py"))


async def _poll_health(client: httpx.AsyncClient, statuses: list[int]) -> None:
    while True:
        statuses.append((await client.get("/health/live")).status_code)
        await asyncio.sleep(0.05)


async def test_every_escape_is_refused_while_the_kernel_serves(make_settings, corpus_plugin: Path, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, corpus_plugin, tmp_path, override="the escape corpus is meant to fail the scan")
        answers: dict[str, int] = {}
        for name in NAMES:

            async def ready() -> bool:
                found = await worker_of(client, "probe")
                return bool(found and found["running"])

            await eventually(ready)
            statuses: list[int] = []
            poller = asyncio.create_task(_poll_health(client, statuses))
            try:
                answer = await client.get(f"/api/v1/x/probe/escape/{name}", headers=VIEWER)
            finally:
                await asyncio.sleep(0.06)  # one more health poll after the escape has been dealt with
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            answers[name] = answer.status_code
            assert answer.status_code in (502, 504), (name, answer.text)
            assert answer.json()["violations"], (name, answer.text)
            assert statuses and set(statuses) == {200}, (name, statuses)

        stored = await violations(client, "probe")
        by_escape = {v["context"].get("params", {}).get("name") for v in stored}
        assert set(NAMES) <= by_escape, sorted(set(NAMES) - by_escape)
        assert (await client.get("/api/v1/plugins/probe", headers=ADMIN)).json()["status"] == "enabled"

        async def announced() -> list:
            page = await client.get(
                "/api/v1/events", params={"topic": "tracker/events/plugins/violation", "limit": 500}, headers=ADMIN
            )
            return page.json()["items"]

        events = await eventually(announced)
        assert {e["payload"]["name"] for e in events} == {"probe"}
        metrics = (await client.get("/metrics", headers=ADMIN)).text
        assert 'taylordash_sandbox_violations_total{kind="import",plugin="probe"}' in metrics
        assert (await client.get("/health/live")).status_code == 200
