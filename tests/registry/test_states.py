"""Two instances of one deployment sharing the database and a bus: a plugin enabled or disabled on one
is applied by the other at once, although each caches its view for minutes."""

from __future__ import annotations

import asyncio
import uuid

from tests.events.helpers import eventually
from tests.registry.conftest import ADMIN, VIEWER, plugins, upload

CACHED = {"plugins": {"state_cache_seconds": 300}}


async def test_enable_and_disable_reach_the_other_instance(start_app, make_settings, package):
    bus = f"memory://registry-{uuid.uuid4().hex[:8]}"
    first = make_settings(bus_url=bus, bus_client_id="registry-a", plugins=CACHED)
    second = make_settings(bus_url=bus, bus_client_id="registry-b", plugins=CACHED)
    async with start_app(plugins(), settings_=first) as a, start_app(plugins(), settings_=second) as b:
        heard: list[str] = []

        async def listener(name: str) -> None:
            heard.append(name)

        b_kernel = b._transport.app.kernel  # type: ignore[attr-defined]
        b_kernel.services["plugins"].states.watch(listener)
        created = await upload(a, package("benign/burndown_chart", "wheel"))
        assert created.status_code == 201, created.text

        async def active_on(client, wanted: bool) -> bool:
            shown = await client.get("/api/v1/plugins/burndown-chart", headers=VIEWER)
            return shown.json()["active"] is wanted

        assert await active_on(b, False)  # B has cached "not enabled" for five minutes
        enabled = await a.post("/api/v1/plugins/burndown-chart/enable", headers=ADMIN)
        assert enabled.status_code == 200 and enabled.json()["active"] is True
        await eventually(lambda: active_on(b, True), seconds=10)
        assert "burndown-chart" in heard

        listed = (await b.get("/api/v1/plugins?source=uploaded", headers=VIEWER)).json()["items"]
        assert [(i["name"], i["active"]) for i in listed] == [("burndown-chart", True)]
        disabled = await b.post("/api/v1/plugins/burndown-chart/disable", headers=ADMIN)
        assert disabled.json()["active"] is False
        await eventually(lambda: active_on(a, False), seconds=10)
        await asyncio.sleep(0.1)
        assert heard.count("burndown-chart") == 2  # once per change, never the instance's own echo twice
