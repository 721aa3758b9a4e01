"""infra/: Prometheus, VictoriaMetrics and Grafana configuration is valid, and every metric a
dashboard or alert rule queries is one the running app exports."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import running
from tests.monitoring.conftest import ADMIN

INFRA = Path(__file__).resolve().parents[2] / "infra"
GRAFANA = INFRA / "grafana"
METRIC = re.compile(r"\btaylordash_[a-z0-9_]+\b")
UP_JOB = re.compile(r'up\{job="([^"]+)"\}')


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))}


def alert_rules() -> list[dict]:
    doc = load_yaml(GRAFANA / "provisioning" / "alerting" / "taylordash-alerts.yml")
    return [rule for group in doc["groups"] for rule in group["rules"]]


def queries() -> dict[str, str]:
    """Every PromQL expression, keyed by where it is."""
    found = {}
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel["targets"]:
                found[f"{name}: {panel['title']} ({target['refId']})"] = target["expr"]
        for variable in board["templating"]["list"]:
            found[f"{name}: variable {variable['name']}"] = variable["definition"]
    for rule in alert_rules():
        for query in rule["data"]:
            if "expr" in query["model"]:
                found[f"alert {rule['uid']}"] = query["model"]["expr"]
    return found


def test_prometheus_and_victoriametrics_config():
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["taylordash"]["metrics_path"] == "/metrics"
    assert jobs["taylordash"]["authorization"]["type"] == "Bearer"
    assert jobs["taylordash"]["dns_sd_configs"][0]["port"] == 8000
    assert "mosquitto" in jobs
    assert config["remote_write"][0]["url"] == "http://victoriametrics:8428/api/v1/write"
    flags = dict(
        line.split("=", 1)
        for line in (INFRA / "victoriametrics" / "victoriametrics.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert flags["httpListenAddr"] == ":8428" and flags["retentionPeriod"].endswith("d")


def test_grafana_provisioning():
    sources = load_yaml(GRAFANA / "provisioning" / "datasources" / "victoriametrics.yml")["datasources"]
    uids = {source["uid"] for source in sources}
    assert sources[0]["url"] == "http://victoriametrics:8428" and sources[0]["type"] == "prometheus"
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "taylordash.yml")["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]

    boards = dashboards()
    assert len(boards) >= 3
    titles = " | ".join(b["title"] for b in boards.values())
    for topic in ("System health", "API performance", "Events, plugins & security"):
        assert topic in titles
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, (name, panel["title"])
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), (name, panel["title"])
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])

    rules = alert_rules()
    assert len({rule["uid"] for rule in rules}) == len(rules)
    text = " ".join(rule["title"].lower() for rule in rules)
    for topic in ("error rate", "outbox lag", "dead-lettered", "violations"):
        assert topic in text, topic
    for rule in rules:
        refs = {query["refId"] for query in rule["data"]}
        assert rule["condition"] in refs, rule["uid"]
        for query in rule["data"]:
            assert query["datasourceUid"] in uids | {"__expr__"}, rule["uid"]
        assert rule["annotations"]["__dashboardUid__"] in {b["uid"] for b in boards.values()}


def test_up_selectors_name_scraped_jobs():
    jobs = {job["job_name"] for job in load_yaml(INFRA / "prometheus" / "prometheus.yml")["scrape_configs"]}
    for where, expr in queries().items():
        for job in UP_JOB.findall(expr):
            assert job in jobs, (where, job)


def exported_names(text: str) -> set[str]:
    """Series names the exposition offers, including ones of families without samples yet."""
    names = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def owner_built(module: str) -> bool:
    """Whether the owner module exists as real code (an empty folder is a namespace package: not yet)."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        return False
    return spec is not None and spec.origin not in (None, "namespace")


@pytest.mark.parametrize("pending_file", [GRAFANA / "pending-metrics.yml"])
async def test_every_queried_metric_is_exported(make_app, pending_file):
    async with running(make_app()) as client:
        exposition = (await client.get("/metrics", headers=ADMIN)).text
    exported = exported_names(exposition)
    pending = load_yaml(pending_file)
    missing = {}
    for where, expr in queries().items():
        for name in METRIC.findall(expr):
            if name in exported:
                assert name not in pending, f"{name} is exported now: remove it from {pending_file.name}"
                continue
            entry = pending.get(name)
            if entry is None or owner_built(entry["owner"]):
                missing.setdefault(name, []).append(where)
    assert missing == {}, "queried but not exported:\n" + "\n".join(f"{n}: {w}" for n, w in missing.items())
