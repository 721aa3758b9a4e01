"""Retention: the cleanup deletes exactly the expired rows, reports counts, and shows in metrics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select

from builtin_plugins.monitoring.models import ApplicationLog, LogStreamEntry, SystemMetric
from tests.conftest import running
from tests.monitoring.conftest import ADMIN, VIEWER, value
from tests.support.cli import clean_env, run

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
LOGS, FEED, SAMPLES = ApplicationLog.__table__, LogStreamEntry.__table__, SystemMetric.__table__


def log_row(age: timedelta) -> dict:
    return {
        "id": uuid.uuid4(),
        "ts": NOW - age,
        "level": "info",
        "service": "test",
        "logger": "taylordash.test",
        "message": "old",
        "trace_id": None,
        "request_id": None,
        "instance": "t",
        "context": {},
    }


async def seed(engine) -> dict[str, set]:
    """Rows on both sides of each default cutoff (30, 30 and 1 days), including exactly at it."""
    ages = [timedelta(days=d, seconds=s) for d, s in ((0, 0), (29, 86399), (30, 0), (30, 1), (45, 0), (400, 0))]
    logs = [log_row(a) for a in ages]
    samples = [{"id": uuid.uuid4(), "recorded_at": NOW - a, "instance": "t", "name": "x", "value": 1.0} for a in ages]
    feed_ages = [timedelta(hours=h) for h in (0, 23, 24, 25, 100)]
    async with engine.begin() as conn:
        await conn.execute(insert(LOGS), logs)
        await conn.execute(insert(SAMPLES), samples)
        for age in feed_ages:
            await conn.execute(insert(FEED).values(log_id=uuid.uuid4(), created_at=NOW - age))
    keep = {timedelta(days=0), timedelta(days=29, seconds=86399), timedelta(days=30)}
    return {
        "logs": {r["id"] for r, a in zip(logs, ages, strict=True) if a in keep},
        "samples": {r["id"] for r, a in zip(samples, ages, strict=True) if a in keep},
        "feed": 3,
    }


async def test_cleanup_deletes_exactly_the_expired_rows(make_app):
    app = make_app(db_logging=False)  # only the seeded rows: the app's own lines would be "expired" too
    async with running(app) as client:
        engine = app.kernel.db.engine
        async with engine.begin() as conn:
            for table in (LOGS, SAMPLES, FEED):
                await conn.execute(table.delete())
        kept = await seed(engine)
        results = await app.kernel.services["retention"].run(now=NOW)
        async with engine.connect() as conn:
            logs_left = set((await conn.execute(select(LOGS.c.id))).scalars())
            samples_left = set((await conn.execute(select(SAMPLES.c.id))).scalars())
            feed_left = (await conn.execute(select(FEED.c.created_at))).scalars().all()
        metrics = (await client.get("/metrics", headers=ADMIN)).text
        policies = {p["table_name"]: p for p in (await client.get("/api/v1/retention", headers=ADMIN)).json()["items"]}
    assert {r.table: r.deleted for r in results} == {"application_logs": 3, "system_metrics": 3, "log_stream": 2}
    assert logs_left == kept["logs"]
    assert samples_left == kept["samples"]
    assert len(feed_left) == kept["feed"]
    assert value(metrics, "taylordash_retention_deleted_rows_total", table="application_logs") == 3
    assert value(metrics, "taylordash_retention_deleted_rows_total", table="log_stream") == 2
    assert value(metrics, "taylordash_retention_runs_total", table="system_metrics", outcome="ok") == 1
    assert value(metrics, "taylordash_retention_last_run_timestamp_seconds", table="system_metrics") > 0
    assert policies["application_logs"]["last_deleted"] == 3
    assert policies["application_logs"]["last_run_at"].startswith("2030-06-01T12:00:00")


async def test_policies_api(make_app):
    app = make_app(retention_batch_size=2)
    async with running(app) as client:
        changed = await client.put("/api/v1/retention/system_metrics", json={"max_age_days": 7}, headers=ADMIN)
        disabled = await client.put(
            "/api/v1/retention/application_logs", json={"max_age_days": 1, "enabled": False}, headers=ADMIN
        )
        unknown = await client.put("/api/v1/retention/users", json={"max_age_days": 7}, headers=ADMIN)
        invalid = await client.put("/api/v1/retention/system_metrics", json={"max_age_days": 0}, headers=ADMIN)
        forbidden = await client.put("/api/v1/retention/system_metrics", json={"max_age_days": 7}, headers=VIEWER)
        async with app.kernel.db.engine.begin() as conn:
            await conn.execute(
                insert(SAMPLES),
                [
                    {
                        "id": uuid.uuid4(),
                        "recorded_at": datetime.now(UTC) - timedelta(days=8),
                        "instance": "t",
                        "name": "x",
                        "value": 1.0,
                    }
                    for _ in range(5)
                ],
            )
        ran = await client.post("/api/v1/retention/run", headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["max_age_days"] == 7
    assert disabled.json()["enabled"] is False
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:taylordash:problem:unknown-retention-table"
    assert invalid.status_code == 422 and forbidden.status_code == 403
    results = {r["table"]: r["deleted"] for r in ran.json()["results"]}
    assert results["system_metrics"] == 5  # in batches of 2
    assert "application_logs" not in results


async def test_retention_cli(make_app, settings, database_url):
    async with running(make_app()):
        pass  # migrated, default policies in place
    env = clean_env(TD_DATA_DIR=str(settings.data_dir), TD_DATABASE_URL=database_url, TD_LOG_LEVEL="warning")
    changed = run("retention", "set", "log_stream", "--days", "3", env=env)
    assert changed.returncode == 0, changed.stderr
    assert "log_stream: 3 days, enabled" in changed.stdout
    ran = run("retention", "run", "--json", env=env)
    assert ran.returncode == 0, ran.stderr
    cutoffs = {r["table"]: r["cutoff"] for r in json.loads(ran.stdout.strip().splitlines()[-1])}
    assert set(cutoffs) == {"application_logs", "system_metrics", "log_stream"}
    listed = json.loads(run("retention", "list", "--json", env=env).stdout.strip().splitlines()[-1])
    policies = {p["table"]: p for p in listed}
    assert policies["log_stream"]["max_age_days"] == 3 and policies["log_stream"]["last_run_at"]
