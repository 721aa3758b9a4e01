"""Structured logs in the database: asynchronous batched writes, filters, pagination, stats, SSE."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import structlog

from tests.conftest import running
from tests.monitoring.conftest import ADMIN, VIEWER, flush_logs, served, value

TRACE = "0af7651916cd43dd8448eb211c80319c"


async def test_requests_are_logged_and_searchable(make_app):
    app = make_app()
    async with running(app) as client:
        traced = await client.get(
            "/health/live", headers={"traceparent": f"00-{TRACE}-b7ad6b7169203331-01", "x-request-id": "req-42"}
        )
        assert traced.status_code == 200
        for _ in range(4):
            await client.get("/health/live")
        structlog.get_logger("taylordash.storage").warning("disk.almost_full", free_bytes=123, path="/x")
        logging.getLogger("uvicorn.error").error("plain stdlib %s", "line")
        await flush_logs(app)

        by_trace = (await client.get("/api/v1/logs", params={"trace_id": TRACE}, headers=ADMIN)).json()
        assert [i["message"] for i in by_trace["items"]] == ["request"]
        line = by_trace["items"][0]
        assert line["service"] == "access" and line["level"] == "info" and line["request_id"] == "req-42"
        assert line["context"]["path"] == "/health/live" and line["context"]["status"] == 200

        warnings = (await client.get("/api/v1/logs", params={"min_level": "warning"}, headers=ADMIN)).json()
        assert {(i["service"], i["message"]) for i in warnings["items"]} >= {
            ("storage", "disk.almost_full"),
            ("uvicorn", "plain stdlib line"),
        }
        stored = next(i for i in warnings["items"] if i["message"] == "disk.almost_full")
        assert stored["context"] == {"free_bytes": 123, "path": "/x"}
        only = (await client.get("/api/v1/logs", params={"level": "error"}, headers=ADMIN)).json()["items"]
        assert [i["message"] for i in only] == ["plain stdlib line"]
        several = await client.get(
            "/api/v1/logs", params={"level": "error,warning", "service": "storage"}, headers=ADMIN
        )
        assert [i["message"] for i in several.json()["items"]] == ["disk.almost_full"]
        text = await client.get("/api/v1/logs", params={"q": "ALMOST"}, headers=ADMIN)
        assert [i["message"] for i in text.json()["items"]] == ["disk.almost_full"]

        pages, cursor, seen = 0, None, []
        while True:
            params = {"service": "access", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/logs", params=params, headers=ADMIN)).json()
            seen += page["items"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len({i["id"] for i in seen}) >= 5
        stamps = [i["ts"] for i in seen]
        assert stamps == sorted(stamps, reverse=True)

        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        later = await client.get("/api/v1/logs", params={"since": future}, headers=ADMIN)
        assert later.json()["items"] == []
        window = await client.get("/api/v1/logs", params={"until": future, "limit": 1}, headers=ADMIN)
        assert len(window.json()["items"]) == 1

        stats = (await client.get("/api/v1/logs/stats", headers=ADMIN)).json()
        assert stats["by_level"]["warning"] >= 1 and stats["by_level"]["error"] == 1
        assert stats["by_service"]["access"] >= 5
        assert stats["total"] == sum(stats["by_level"].values())
        assert stats["writer"]["written"] >= stats["total"] and stats["writer"]["dropped"] == 0

        problems = [
            await client.get("/api/v1/logs", params={"level": "loud"}, headers=ADMIN),
            await client.get("/api/v1/logs", params={"since": "2024-01-01T00:00:00"}, headers=ADMIN),
            await client.get("/api/v1/logs", params={"cursor": "nope"}, headers=ADMIN),
            await client.get("/api/v1/logs", headers=VIEWER),
        ]
        metrics = (await client.get("/metrics", headers=ADMIN)).text
    assert [p.status_code for p in problems] == [422, 422, 400, 403]
    assert problems[2].json()["type"] == "urn:taylordash:problem:invalid-cursor"
    assert value(metrics, "taylordash_logs_written_total") >= stats["total"]


async def test_full_queue_drops_instead_of_blocking(make_app):
    app = make_app(log_queue_size=100, log_flush_seconds=60)
    async with running(app) as client:
        writer = app.kernel.services["monitoring"].writer
        log = structlog.get_logger("taylordash.test")
        for n in range(250):
            log.info("burst", n=n)
        assert len(writer.queue) == 100
        assert writer.dropped >= 150
        await flush_logs(app)
        metrics = (await client.get("/metrics", headers=ADMIN)).text
    assert value(metrics, "taylordash_logs_dropped_total") >= 150


async def test_database_logging_can_be_off(make_app):
    app = make_app(db_logging=False)
    async with running(app) as client:
        await client.get("/health/live")
        stats = (await client.get("/api/v1/logs/stats", headers=ADMIN)).json()
    assert stats["total"] == 0 and stats["writer"] is None


async def read_events(response: httpx.Response, count: int) -> list[tuple[str, dict]]:
    events, current = [], {}
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append((current["id"], current["data"]))
            current = {}
            if len(events) == count:
                return events
    return events


async def test_live_stream_over_a_real_server(make_app):
    app = make_app()
    log = structlog.get_logger("taylordash.sse")
    async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:
        async with client.stream("GET", "/api/v1/logs/stream", params={"service": "sse"}, headers=ADMIN) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            await asyncio.sleep(0.2)
            for n in range(3):
                log.info("tick", n=n)
            first = await asyncio.wait_for(read_events(response, 3), 10)
        assert [e[1]["context"]["n"] for e in first] == [0, 1, 2]
        assert all(e[1]["service"] == "sse" for e in first)

        log.info("tick", n=3)
        log.info("tick", n=4)
        async with client.stream(
            "GET", "/api/v1/logs/stream", params={"service": "sse"}, headers={**ADMIN, "last-event-id": first[-1][0]}
        ) as resumed:
            later = await asyncio.wait_for(read_events(resumed, 2), 10)
        assert [e[1]["context"]["n"] for e in later] == [3, 4]
        bad = await client.get("/api/v1/logs/stream", headers={**ADMIN, "last-event-id": "x"})
        assert bad.status_code == 400


async def test_stream_ends_after_max_events(make_app):
    app = make_app()
    async with running(app) as client:
        structlog.get_logger("taylordash.sse").info("one")
        await flush_logs(app)
        response = await client.get(
            "/api/v1/logs/stream", params={"max_events": 1, "service": "sse"}, headers={**ADMIN, "last-event-id": "0"}
        )
    assert response.status_code == 200
    assert "event: log" in response.text and '"message":"one"' in response.text
