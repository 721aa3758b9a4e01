"""``/metrics``: access control, HTTP metrics by route template, and what the kernel registry holds."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import running
from tests.monitoring.conftest import ADMIN, TOKEN, VIEWER, value


async def test_metrics_access(make_app):
    async with running(make_app()) as client:
        admin = await client.get("/metrics", headers=ADMIN)
        token = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        viewer = await client.get("/metrics", headers=VIEWER)
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer not-the-token-at-all"})
        elsewhere = await client.get("/api/v1/logs", headers={"authorization": f"Bearer {TOKEN}"})
    assert admin.status_code == 200 and token.status_code == 200
    assert token.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert (viewer.status_code, anonymous.status_code, wrong.status_code) == (403, 401, 401)
    assert elsewhere.status_code == 401  # the scrape token opens /metrics only


async def test_http_metrics_use_route_templates(make_app):
    async with running(make_app()) as client:
        for _ in range(3):
            await client.get("/api/v1/plugins/monitoring", headers=VIEWER)
        await client.get("/api/v1/plugins/nothing-by-this-name", headers=VIEWER)
        await client.get("/no/such/path/123")
        await client.delete("/health/live")
        await client.get("/static/kernel/no-such-file.js")
        await client.post("/static/kernel/docs.js")
        text = (await client.get("/metrics", headers=ADMIN)).text
    template = "/api/v1/plugins/{name}"
    assert value(text, "taylordash_http_requests_total", method="GET", route=template, status="200") == 3
    assert value(text, "taylordash_http_requests_total", method="GET", route=template, status="404") == 1
    assert value(text, "taylordash_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert value(text, "taylordash_http_requests_total", method="DELETE", route="/health/live", status="405") == 1
    # Static files' refusals are responses that middleware sees, not exceptions passing through it.
    assert value(text, "taylordash_http_requests_total", method="GET", route="/static/kernel", status="404") == 1
    assert value(text, "taylordash_http_requests_total", method="POST", route="/static/kernel", status="405") == 1
    assert value(text, "taylordash_http_request_duration_seconds_count", method="GET", route=template) == 4
    assert "/no/such/path/123" not in text and "nothing-by-this-name" not in text


async def test_registry_exposes_everything_prefixed(make_app):
    async with running(make_app()) as client:
        await client.get("/health/ready")
        text = (await client.get("/metrics", headers=ADMIN)).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert all(name.startswith("taylordash_") for name in names), sorted(n for n in names if "taylordash_" not in n)
    for expected in (
        "taylordash_hook_call_duration_seconds",
        "taylordash_db_pool_checked_out",
        "taylordash_process_resident_memory_bytes",
        "taylordash_process_cpu_seconds",
        "taylordash_logs_written",
        "taylordash_retention_deleted_rows",
        "taylordash_events_outbox_lag_seconds",
        "taylordash_storage_upload_bytes",
        "taylordash_build_info",
    ):
        assert expected in names, expected
    assert value(text, "taylordash_hook_call_duration_seconds_count", hook="startup", plugin="monitoring") == 1
    assert value(text, "taylordash_process_resident_memory_bytes") > 10_000_000
