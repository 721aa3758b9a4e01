"""The system sampler stores figures in system_metrics and feeds the host gauges."""

from __future__ import annotations

import asyncio

from tests.conftest import running
from tests.monitoring.conftest import ADMIN, value


async def test_sampler_stores_and_lists_samples(make_app):
    app = make_app(sampler_interval_seconds=0.1, instance_name="node-a")
    async with running(app) as client:
        await app.kernel.services["monitoring"].sampler.sample()
        for _ in range(50):
            listed = (
                await client.get("/api/v1/metrics/system", params={"name": "system.cpu_percent"}, headers=ADMIN)
            ).json()
            if len(listed["items"]) >= 2:
                break
            await asyncio.sleep(0.05)
        first = (await client.get("/api/v1/metrics/system", params={"limit": 3}, headers=ADMIN)).json()
        second = (
            await client.get(
                "/api/v1/metrics/system", params={"limit": 3, "cursor": first["next_cursor"]}, headers=ADMIN
            )
        ).json()
        metrics = (await client.get("/metrics", headers=ADMIN)).text
    assert len(listed["items"]) >= 2  # the periodic job ran as well
    assert {i["instance"] for i in listed["items"]} == {"node-a"}
    assert all(0 <= i["value"] <= 100 for i in listed["items"])
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert value(metrics, "taylordash_system_memory_used_percent") > 0
    assert value(metrics, "taylordash_system_samples_stored_total") >= 14
