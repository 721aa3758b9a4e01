"""infra/traefik: static and dynamic configuration, cross-checked with compose.yml and the kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.conftest import INFRA, load_yaml
from tests.deploy.test_compose import mounted_host_path

TRAEFIK = INFRA / "traefik"


@pytest.fixture(scope="module")
def static() -> dict[str, Any]:
    return load_yaml(TRAEFIK / "traefik.yml")


@pytest.fixture(scope="module")
def dynamic() -> dict[str, Any]:
    """Every file of the dynamic folder, merged as Traefik's file provider does."""
    merged: dict[str, Any] = {"http": {"routers": {}, "services": {}, "middlewares": {}}, "tls": {}}
    for path in sorted((TRAEFIK / "dynamic").glob("*.yml")):
        doc = load_yaml(path)
        for section, value in doc.get("http", {}).items():
            overlap = set(merged["http"][section]) & set(value)
            assert not overlap, f"{path.name} defines {section} {overlap} again"
            merged["http"][section].update(value)
        merged["tls"].update(doc.get("tls", {}))
    return merged


def test_http_redirects_to_https(static):
    web = static["entryPoints"]["web"]
    assert web["address"] == ":80"
    assert web["http"]["redirections"]["entryPoint"] == {"to": "websecure", "scheme": "https", "permanent": True}
    assert static["entryPoints"]["websecure"]["address"] == ":443"
    assert "tls" in static["entryPoints"]["websecure"]["http"]


def test_security_headers_apply_to_every_https_route(static, dynamic):
    (middleware,) = static["entryPoints"]["websecure"]["http"]["middlewares"]
    name, _, provider = middleware.partition("@")
    assert provider == "file"
    headers = dynamic["http"]["middlewares"][name]["headers"]
    assert headers["stsSeconds"] >= 15_552_000 and headers["stsIncludeSubdomains"]
    assert headers["contentTypeNosniff"] and headers["frameDeny"]
    assert headers["referrerPolicy"]


def test_dashboard_only_on_the_internal_entrypoint(static, dynamic, compose):
    assert static["api"] == {"dashboard": True, "insecure": False}
    routers = dynamic["http"]["routers"]
    dashboards = [r for r in routers.values() if r["service"] == "api@internal"]
    assert dashboards and all(r["entryPoints"] == ["traefik"] for r in dashboards)
    for router in dashboards:
        for middleware in router.get("middlewares", []):
            assert "ipAllowList" in dynamic["http"]["middlewares"][middleware]
    internal_port = static["entryPoints"]["traefik"]["address"].lstrip(":")
    published = [p for p in compose["services"]["traefik"]["ports"] if p.endswith(f":{internal_port}")]
    assert published == [f"127.0.0.1:{internal_port}:{internal_port}"]


def test_routers_name_defined_services_and_middlewares(static, dynamic):
    http = dynamic["http"]
    for name, router in http["routers"].items():
        assert set(router["entryPoints"]) <= set(static["entryPoints"]), name
        assert router["service"].endswith("@internal") or router["service"] in http["services"], name
        for middleware in router.get("middlewares", []):
            assert middleware.partition("@")[0] in http["middlewares"], (name, middleware)
        if "websecure" in router["entryPoints"]:
            assert "tls" in router, f"router {name} serves HTTPS without tls"


def test_kernel_service_lists_every_replica_and_checks_readiness(dynamic, compose, public_routes):
    kernel = dynamic["http"]["services"]["kernel"]["loadBalancer"]
    replicas = compose["services"]["kernel"]["deploy"]["replicas"]
    port = compose["services"]["kernel"]["command"][-1]
    expected = [f"http://{compose['name']}-kernel-{i}:{port}" for i in range(1, replicas + 1)]
    assert [s["url"] for s in kernel["servers"]] == expected
    assert kernel["healthCheck"]["path"] == "/health/ready" and "/health/ready" in public_routes


def test_backends_are_services_of_the_stack(dynamic, compose):
    services = set(compose["services"])
    for name, service in dynamic["http"]["services"].items():
        for server in service["loadBalancer"]["servers"]:
            host = urlsplit(server["url"]).hostname
            assert host in services or host.startswith(f"{compose['name']}-kernel-"), (name, host)
    websockets = dynamic["http"]["services"]["mosquitto-websockets"]["loadBalancer"]["servers"][0]["url"]
    assert urlsplit(websockets).port == int(compose["services"]["mosquitto"]["environment"]["MQTT_WS_PORT"])


def test_certificates_come_from_the_mounted_folder(dynamic, compose):
    traefik = compose["services"]["traefik"]
    paths = [c["certFile"] for c in dynamic["tls"]["certificates"]] + [
        c["keyFile"] for c in dynamic["tls"]["certificates"]
    ]
    default = dynamic["tls"]["stores"]["default"]["defaultCertificate"]
    for path in [*paths, default["certFile"], default["keyFile"]]:
        host: Path = mounted_host_path(traefik, path)
        assert host.parent.name == "certs" and (host.parent.parent / "make-certs.sh").exists()
    assert dynamic["tls"]["options"]["default"]["minVersion"] in ("VersionTLS12", "VersionTLS13")
    assert mounted_host_path(traefik, "/etc/traefik/traefik.yml").exists()
    assert mounted_host_path(traefik, "/etc/traefik/dynamic/routes.yml").exists()


def test_file_provider_reads_the_mounted_folder(static, compose):
    folder = static["providers"]["file"]["directory"]
    assert mounted_host_path(compose["services"]["traefik"], folder) == TRAEFIK / "dynamic"
    assert "docker" not in static["providers"]  # no Docker socket in the edge container
    assert static["ping"]["entryPoint"] == "traefik"


def test_healthcheck_pings_with_the_served_configuration(static, compose):
    traefik = compose["services"]["traefik"]
    served = [a.split("=", 1)[1] for a in traefik["command"] if a.startswith("--configFile=")]
    checked = [a.split("=", 1)[1] for a in traefik["healthcheck"]["test"] if a.startswith("--configFile=")]
    assert served == checked and mounted_host_path(traefik, served[0]) == TRAEFIK / "traefik.yml"
    assert traefik["healthcheck"]["test"][1:3] == ["traefik", "healthcheck"] and "ping" in static
