"""``taylordash serve --workers 2``: /metrics aggregates every worker (prometheus multiprocess mode)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.monitoring.conftest import TOKEN, value
from tests.support.cli import clean_env, serving


def test_metrics_aggregate_across_workers(tmp_path: Path):
    data = tmp_path / "data"
    env = clean_env(
        TD_DATA_DIR=str(data),
        TD_LOG_LEVEL="warning",
        TD_WORKERS="2",
        TD_PLUGINS__MONITORING__SCRAPE_TOKEN=TOKEN,
    )
    auth = {"authorization": f"Bearer {TOKEN}"}
    with serving(env, log=tmp_path / "serve.log") as base:
        for _ in range(30):
            assert httpx.get(base + "/health/ready").status_code == 200
        shared = list((data / "run").glob("prometheus-*"))
        assert len(shared) == 1
        pids = {p.stem.rsplit("_", 1)[-1] for p in shared[0].glob("*.db")}
        scrapes = [httpx.get(base + "/metrics", headers=auth) for _ in range(4)]
    assert len(pids) >= 2, pids  # both workers wrote values
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert (
            value(scrape.text, "taylordash_http_requests_total", method="GET", route="/health/ready", status="200")
            == 30
        )
    assert not list((data / "run").glob("prometheus-*"))  # removed when the server stopped
