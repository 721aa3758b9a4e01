"""infra/k8s: the kustomize base and the production overlay, parsed and built without kubectl."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import INFRA, load_all_yaml
from tests.deploy.kustomize import build, containers, key, kustomization, pod_spec

K8S = INFRA / "k8s"
BASE, PRODUCTION = K8S / "base", K8S / "overlays" / "production"
FOLDERS = [BASE, PRODUCTION]
EXTERNAL = ("TD_DATABASE_URL", "TD_BUS_URL", "TD_STORAGE_URL")
SECRET = "taylordash-secrets"


@pytest.fixture(scope="module", params=FOLDERS, ids=["base", "production"])
def built(request: pytest.FixtureRequest) -> dict[tuple[str, str], dict[str, Any]]:
    return {key(r): r for r in build(request.param)}


@pytest.fixture(scope="module")
def production() -> dict[tuple[str, str], dict[str, Any]]:
    return {key(r): r for r in build(PRODUCTION)}


def kernel(resources: dict) -> dict[str, Any]:
    return resources[("Deployment", "taylordash")]


def test_every_manifest_parses_and_names_itself():
    files = sorted(K8S.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        for doc in load_all_yaml(path):
            if path.name == "kustomization.yaml":
                assert doc["kind"] == "Kustomization"
                continue
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path


@pytest.mark.parametrize("folder", FOLDERS, ids=["base", "production"])
def test_kustomization_references_exist(folder: Path):
    spec = kustomization(folder)
    for entry in spec.get("resources", []):
        target = folder / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{folder}: {entry} missing"
    for patch in spec.get("patches", []):
        assert (folder / patch["path"]).is_file(), f"{folder}: patch {patch['path']} missing"
    listed = {folder / e for e in spec.get("resources", [])} | {folder / p["path"] for p in spec.get("patches", [])}
    for path in folder.glob("*.yaml"):
        assert path.name == "kustomization.yaml" or path in listed, f"{path} is not part of the build"


def test_overlay_patches_target_base_resources():
    base = {key(r) for r in build(BASE)}
    for patch in kustomization(PRODUCTION)["patches"]:
        (doc,) = load_all_yaml(PRODUCTION / patch["path"])
        assert key(doc) in base, f"{patch['path']} patches {key(doc)}, which the base does not define"


@pytest.mark.parametrize("folder", FOLDERS, ids=["base", "production"])
def test_image_overrides_apply_and_pin_a_release(folder: Path):
    resources = build(folder)
    images = {c["image"] for r in resources for c in containers(r)}
    assert images, "no containers"
    for image in images:
        assert re.fullmatch(r"ghcr\.io/taylordash/taylordash:\d+\.\d+\.\d+", image), image
    spec = kustomization(folder)
    inherited = {c["image"].partition(":")[0] for r in build(BASE) for c in containers(r)}
    before = {"taylordash"} if folder == BASE else inherited
    for override in spec.get("images", []):
        assert override["name"] in before, f"{folder}: images entry {override['name']} matches no container"


def test_probes_ask_real_kernel_routes(built, public_routes):
    (container,) = containers(kernel(built))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    assert int(args[args.index("--port") + 1]) == ports["http"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        http = container[probe]["httpGet"]
        assert http["path"] in public_routes, f"{probe} asks {http['path']}, which the kernel does not serve"
        assert http["port"] in ports


def test_services_select_the_kernel_pods(built):
    deployment = kernel(built)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = built[("Service", "taylordash")]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = containers(deployment)
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    pdb = built[("PodDisruptionBudget", "taylordash")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    hpa = built[("HorizontalPodAutoscaler", "taylordash")]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == key(deployment)
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    ingress = built[("Ingress", "taylordash")]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"] and backend["port"]["name"] in service_ports


def test_production_overlay_took_effect(production):
    deployment = kernel(production)
    assert deployment["spec"]["replicas"] == 3 and deployment["metadata"]["namespace"] == "taylordash"
    assert all(r["metadata"].get("namespace") == "taylordash" for k, r in production.items() if k[0] != "Namespace")
    (container,) = containers(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"  # the patch kept the probes
    assert {m["name"] for m in container["volumeMounts"]} == {"data", "tmp", "bus-ca"}
    ingress = production[("Ingress", "taylordash")]
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts == {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    config = production[("ConfigMap", "taylordash-config")]["data"]
    assert config["TD_LOG_LEVEL"] == "warning" and config["TD_LOG_FORMAT"] == "json"  # merged, not replaced
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    assert any(config["TD_BUS_TLS_CA_FILE"].startswith(m + "/") for m in mounts)


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def test_every_setting_name_is_real(built, setting_names):
    names = list(built[("ConfigMap", "taylordash-config")]["data"])
    for resource in built.values():
        for container in containers(resource):
            names += env_names(container)
    for name in names:
        assert setting_names.problem(name) is None, setting_names.problem(name)


def test_configuration_and_secret_references(built):
    configmaps = {name for kind, name in built if kind == "ConfigMap"}
    documented = (BASE / "configmap.yaml").read_text()
    for resource in built.values():
        spec = pod_spec(resource)
        if spec is None:
            continue
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for container in containers(resource):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps
            for entry in container.get("env", []):
                secret = entry.get("valueFrom", {}).get("secretKeyRef")
                if secret:
                    assert secret["name"] == SECRET and secret["key"] == entry["name"]
                    assert f"#   {secret['key']}=" in documented, f"{secret['key']} is not documented"
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{key(resource)} mounts an undefined volume {mount['name']}"


def test_external_endpoints_come_from_configuration(built):
    (container,) = containers(kernel(built))
    env = {e["name"]: e for e in container["env"]}
    for name in (*EXTERNAL, "TD_SECRET_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == SECRET
    assert env["TD_BUS_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # unique per pod
    assert not [k for k in built if k[0] in ("StatefulSet", "DaemonSet")]  # no database or broker in here
    config = built[("ConfigMap", "taylordash-config")]["data"]
    assert config["TD_MIGRATE_ON_START"] == "false"  # the Job migrates, pods never race to


def test_migration_job_and_backups(built):
    job = built[("Job", "taylordash-migrate")]
    (container,) = containers(job)
    assert container["args"] == ["db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")
    assert "TD_DATABASE_URL" in env_names(container)
    backup = built[("CronJob", "taylordash-backup")]
    (container,) = containers(backup)
    assert container["args"] == ["backup", "create"]
    assert {"TD_DATABASE_URL", "TD_STORAGE_URL"} <= set(env_names(container))


def test_pods_run_unprivileged(built):
    for resource in built.values():
        spec = pod_spec(resource)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] != 0
        for container in containers(resource):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/taylordash"} <= mounts  # the only writable places
