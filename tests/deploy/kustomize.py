"""Just enough of ``kustomize build`` to check infra/k8s without kubectl: resources (files and
folders), namespace, labels, images, ConfigMap generators with ``behavior: merge`` and strategic-merge
patches (lists of named items merged by name, other lists replaced)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.deploy.conftest import load_all_yaml, load_yaml

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


def key(resource: dict[str, Any]) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge of ``patch`` into ``base`` (both plain YAML data)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = merge(base[name], value) if name in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        if all(isinstance(i, dict) and "name" in i for i in base):
            merged_list = [dict(i) for i in base]
            index = {item["name"]: n for n, item in enumerate(merged_list)}
            for item in patch:
                if item["name"] in index:
                    merged_list[index[item["name"]]] = merge(merged_list[index[item["name"]]], item)
                else:
                    merged_list.append(copy.deepcopy(item))
            return merged_list
    return copy.deepcopy(patch)


def kustomization(folder: Path) -> dict[str, Any]:
    return load_yaml(folder / "kustomization.yaml")


def build(folder: Path) -> list[dict[str, Any]]:
    """The resources ``kustomize build folder`` would print (for the features listed above)."""
    spec = kustomization(folder)
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        resources.extend(build(path) if path.is_dir() else load_all_yaml(path))
    by_key = {key(r): r for r in resources}
    assert len(by_key) == len(resources), f"{folder}: a resource is defined twice"

    for generator in spec.get("configMapGenerator", []):
        literals = dict(item.split("=", 1) for item in generator.get("literals", []))
        target = ("ConfigMap", generator["name"])
        if generator.get("behavior") == "merge":
            assert target in by_key, f"{folder}: configMapGenerator merges into a missing {target}"
            by_key[target]["data"] = {**by_key[target].get("data", {}), **literals}
        else:
            by_key[target] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}}
            by_key[target]["data"] = literals

    for patch_entry in spec.get("patches", []):
        patch = load_yaml(folder / patch_entry["path"])
        target = key(patch)
        assert target in by_key, f"{folder}: patch {patch_entry['path']} targets the missing {target}"
        by_key[target] = merge(by_key[target], patch)

    images = {image["name"]: image for image in spec.get("images", [])}
    labels = {k: v for group in spec.get("labels", []) for k, v in group["pairs"].items()}
    built = []
    for resource in by_key.values():
        resource = copy.deepcopy(resource)
        if spec.get("namespace") and resource["kind"] not in CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = spec["namespace"]
        resource["metadata"].setdefault("labels", {}).update(labels)
        for container in containers(resource):
            name, _, tag = container["image"].partition(":")
            if name in images:
                image = images[name]
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
        built.append(resource)
    return built


def pod_spec(resource: dict[str, Any]) -> dict[str, Any] | None:
    spec = resource.get("spec", {})
    if resource["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if resource["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        return spec["template"]["spec"]
    return None


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    return [] if spec is None else spec.get("initContainers", []) + spec["containers"]
