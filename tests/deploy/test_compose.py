"""compose.yml, the Dockerfile and .env.example, checked statically: no container engine runs in CI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests.deploy.conftest import INFRA, ROOT, load_yaml

SCHEMA = json.loads((ROOT / "tests" / "unit" / "data" / "compose-spec.json").read_text())
# An exact release: a version number, optionally with a variant suffix, or a MinIO release stamp.
PINNED_TAG = re.compile(r"^v?\d+(\.\d+){1,3}([-.][0-9A-Za-z.]+)?$|^RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$")
# Long-running services without a healthcheck, with the reason; everything else must have one.
NO_HEALTHCHECK = {"mosquitto-exporter": 'no shell in the image; Prometheus\'s up{job="mosquitto"} is its health'}
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:[:?-][^}]*)?\}")


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_valid_against_the_compose_specification(compose: dict):
    jsonschema.Draft7Validator(SCHEMA).validate(compose)


def test_the_whole_stack_is_there(compose: dict):
    services = compose["services"]
    wanted = {"traefik", "kernel", "migrate", "postgres", "mosquitto", "minio", "minio-init", "victoriametrics"}
    assert wanted | {"prometheus", "grafana", "timescaledb"} <= set(services)
    assert services["timescaledb"]["profiles"] == ["timescale"]
    # Everything else starts with the one command `docker compose up -d`.
    assert [name for name, s in services.items() if s.get("profiles")] == ["timescaledb"]


def test_every_image_is_pinned_to_a_release(compose: dict):
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"service {name} names no image"
        reference, _, digest = image.partition("@")
        assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: malformed digest in {image}"
        repo, _, tag = reference.rpartition(":")
        assert repo and "/" not in tag, f"service {name}: image {image!r} names no tag"
        assert PINNED_TAG.match(tag), f"service {name}: tag {tag!r} of {image!r} is not an exact release"


def test_long_running_services_have_healthchecks(compose: dict):
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check and check["test"] and not check.get("disable"), f"service {name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"


def test_the_exempt_exporter_is_watched_by_prometheus(compose: dict):
    targets = {
        target
        for job in load_yaml(INFRA / "prometheus" / "prometheus.yml")["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    for name in NO_HEALTHCHECK:
        assert any(t.startswith(f"{name}:") for t in targets), f"{name} is neither health-checked nor scraped"


def test_kernel_healthchecks_ask_real_routes(compose: dict, public_routes: set[str]):
    kernel = compose["services"]["kernel"]
    urls = re.findall(r"https?://[^'\" ]+", " ".join(kernel["healthcheck"]["test"]))
    assert [urlsplit(u).path for u in urls] == ["/health/ready"]
    assert "/health/ready" in public_routes
    port = int(kernel["command"][kernel["command"].index("--port") + 1])
    assert {urlsplit(u).port for u in urls} == {port}
    dockerfile = (ROOT / "Dockerfile").read_text()
    probe = re.search(r"HEALTHCHECK[^\n]*\\\n\s*CMD (.+)", dockerfile)
    assert probe and urlsplit(re.findall(r"https?://[^'\" ]+", probe.group(1))[0]).path in public_routes


def test_environment_names_real_settings(compose: dict, setting_names):
    seen = set()
    for name, service in compose["services"].items():
        for key in environment(service):
            if key.startswith("TD_"):
                seen.add(key)
                assert setting_names.problem(key) is None, f"service {name}: {setting_names.problem(key)}"
    for key in env_example():
        if key.startswith("TD_"):
            assert setting_names.problem(key) is None, f".env.example: {setting_names.problem(key)}"
    assert {"TD_DATABASE_URL", "TD_BUS_URL", "TD_STORAGE_URL", "TD_SECRET_KEY"} <= seen


def test_kernel_endpoints_point_at_the_stack(compose: dict):
    env = environment(compose["services"]["kernel"])
    assert urlsplit(env["TD_DATABASE_URL"]).scheme == "postgresql+asyncpg"
    assert "${DATABASE_HOST:-postgres}" in env["TD_DATABASE_URL"]
    assert env["TD_BUS_URL"].startswith("mqtt://") and env["TD_BUS_URL"].endswith("@mosquitto:1883")
    storage = env["TD_STORAGE_URL"]
    assert storage.startswith("s3://") and "@minio:9000/${S3_BUCKET:-taylordash}" in storage
    assert environment(compose["services"]["migrate"]) == env  # one anchor: the same settings


def test_migrations_and_bucket_are_made_once_before_the_kernel(compose: dict):
    services = compose["services"]
    kernel = services["kernel"]
    for one_shot in ("migrate", "minio-init"):
        assert kernel["depends_on"][one_shot]["condition"] == "service_completed_successfully"
        assert services[one_shot]["restart"] == "no"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert kernel["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    assert kernel["deploy"]["replicas"] >= 2
    assert "ports" not in kernel  # reached through Traefik only


def test_minio_init_makes_the_bucket_the_kernel_uses(compose: dict):
    init = compose["services"]["minio-init"]
    script_path = init["entrypoint"][-1]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in init["volumes"])}
    folder, _, script = script_path.rpartition("/")
    host = ROOT / mounts[folder]
    text = (host / script).read_text()
    assert 'mc mb --ignore-existing "td/$bucket"' in text
    assert "policy.json" in text and json.loads((host / "policy.json").read_text())["Statement"]
    for key in ("S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET"):
        assert key in init["environment"] and key in text


def test_every_variable_is_in_env_example(compose: dict):
    used = set(VARIABLE.findall((ROOT / "compose.yml").read_text()))
    example = env_example()
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    required = set(re.findall(r"\$\{([A-Z_]+):\?", (ROOT / "compose.yml").read_text()))
    for name in required:
        assert example[name], f".env.example leaves the required {name} empty"


def test_bind_mounts_exist(compose: dict):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("./"):
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
                continue
            path = ROOT / source
            if path.name == "certs":  # made by the folder's make-certs.sh, never committed
                assert (path.parent / "make-certs.sh").exists(), f"{name}: nothing creates {source}"
                assert "certs/" in (path.parent / ".gitignore").read_text()
                continue
            assert path.exists(), f"{name}: {source} does not exist"
        env_file = service.get("env_file")
        if env_file:
            assert (ROOT / env_file).exists()


def test_internal_ports_stay_on_loopback(compose: dict):
    public = {"80:80", "443:443", "8883:8883"}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port in public or port.startswith("127.0.0.1:"), f"{name} publishes {port} on every address"
    assert {"127.0.0.1:8080:8080"} == set(compose["services"]["traefik"]["ports"]) - public


def test_prometheus_gets_the_scrape_token_the_kernel_checks(compose: dict):
    prometheus = compose["services"]["prometheus"]
    (secret,) = prometheus["secrets"]
    config = load_yaml(INFRA / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "taylordash"]
    assert job["authorization"]["credentials_file"] == secret["target"]
    assert compose["secrets"][secret["source"]]["environment"] == "METRICS_SCRAPE_TOKEN"
    assert "METRICS_SCRAPE_TOKEN" in environment(compose["services"]["kernel"])["TD_PLUGINS__MONITORING__SCRAPE_TOKEN"]
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["kernel"] and sd["port"] == 8000
    mounted = {v.split(":")[1] for v in prometheus["volumes"]}
    assert "/etc/prometheus/prometheus.yml" in mounted


def test_grafana_mounts_what_its_provisioning_names(compose: dict):
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provider = load_yaml(INFRA / "grafana" / "provisioning" / "dashboards" / "taylordash.yml")["providers"][0]
    source = mounts[provider["options"]["path"]]
    assert list((ROOT / source).glob("*.json")), "no dashboards where the provider looks"
    assert mounts["/etc/grafana/provisioning"] == "./infra/grafana/provisioning"


def test_dockerfile_builds_in_stages_and_runs_unprivileged():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.M)
    assert len(stages) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", dockerfile, re.M)
    assert base and PINNED_TAG.match(base.group(1).partition(":")[2].split("-")[0])
    assert "COPY --from=build" in dockerfile
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile
    assert re.search(r'^ENTRYPOINT \["taylordash"\]', dockerfile, re.M)


@pytest.mark.parametrize("path", [".dockerignore"])
def test_build_context_leaves_out_local_state(path: str):
    ignored = set((ROOT / path).read_text().split())
    assert {".git", ".venv", ".env", ".taylordash"} <= ignored


def mounted_host_path(service: dict[str, Any], container_path: str) -> Path:
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return ROOT / source / container_path.removeprefix(target).lstrip("/")
    raise AssertionError(f"{container_path} is not mounted")
