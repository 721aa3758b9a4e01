"""compose.yml is checked statically, since no container engine runs in CI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from kernel.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "data" / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yml").read_text())


def test_valid_against_the_compose_specification(compose: dict):
    jsonschema.Draft7Validator(SCHEMA).validate(compose)


def test_every_image_is_pinned(compose: dict):
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"service {name} names no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"service {name}: image {image!r} is not pinned to a version"
        assert re.search(r"\d", tag), f"service {name}: tag {tag!r} names no version"


def test_long_running_services_have_healthchecks(compose: dict):
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service, f"service {name} has no healthcheck"


def test_kernel_environment_names_real_settings(compose: dict):
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if key.startswith(ENV_PREFIX):
                assert key in known, f"service {name} sets unknown setting {key}"


def test_migrations_run_once_before_the_kernel(compose: dict):
    kernel = compose["services"]["kernel"]
    assert kernel["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert compose["services"]["migrate"]["command"] == ["db", "upgrade"]
    assert kernel["deploy"]["replicas"] >= 2


def test_env_example_covers_every_required_variable(compose: dict):
    text = (ROOT / "compose.yml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if "=" in line}
    assert required <= example, f"missing from .env.example: {required - example}"


def test_dockerfile_runs_as_non_root_with_healthcheck():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile
