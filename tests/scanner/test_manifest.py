"""The manifest model in sdk.manifest and the scanner's manifest rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.scanner import scan
from sdk import PluginManifest
from sdk.manifest import ManifestError, api_compatible, is_known_permission, topic_matches

VALID = """
name = "hello"
version = "1.2.0"
api_version = "1.0"
entry = "hello_plugin"
type = "tool"
description = "Says hello"
author = "Ada"
permissions = ["projects:read", "events:publish:tracker/events/hello/*", "http:fetch:api.example.org"]

[contributions]
event_subscriptions = ["tracker/events/projects/+"]
panels = [{ id = "hello", title = "Hello" }]
config_schema = { type = "object", properties = { greeting = { type = "string" } } }

[[suppressions]]
rule = "B311"
path = "hello_plugin/*.py"
justification = "random picks a greeting, nothing secret"
"""


def test_a_valid_manifest_parses():
    manifest = PluginManifest.parse(VALID)
    assert manifest.name == "hello" and manifest.type == "tool"
    assert manifest.contributions.panels[0].title == "Hello"
    assert manifest.unknown_permissions() == []
    assert manifest.is_compatible()
    assert manifest.suppressions[0].covers("B311", "hello_plugin/greet.py")
    assert not manifest.suppressions[0].covers("B311", "other/greet.py")


def test_grants_matches_patterns():
    manifest = PluginManifest.parse(VALID)
    assert manifest.grants("projects:read")
    assert not manifest.grants("projects:write")
    assert manifest.grants("events:publish:tracker/events/hello/greeted")
    assert not manifest.grants("events:publish:tracker/events/projects/created")
    assert manifest.grants("http:fetch:api.example.org")
    assert not manifest.grants("http:fetch:evil.example.org")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('name = "hello"', "name:"),
        ('type = "tool"', "type:"),
        ('api_version = "1.0"', "api_version:"),
    ],
)
def test_missing_or_bad_fields_are_named(change: str, problem: str):
    with pytest.raises(ManifestError) as excinfo:
        PluginManifest.parse(VALID.replace(change, ""))
    assert any(p.startswith(problem) for p in excinfo.value.problems), excinfo.value.problems


def test_bad_values_and_toml():
    with pytest.raises(ManifestError, match="type"):
        PluginManifest.parse(VALID.replace('type = "tool"', 'type = "daemon"'))
    with pytest.raises(ManifestError, match="not written"):
        PluginManifest.parse(VALID.replace('"projects:read"', '"read everything"'))
    with pytest.raises(ManifestError, match="justification"):
        PluginManifest.parse(VALID.replace("random picks a greeting, nothing secret", "   ok   "))
    with pytest.raises(ManifestError, match="not valid TOML"):
        PluginManifest.parse("name = ")
    with pytest.raises(ManifestError, match="surprise"):
        PluginManifest.parse(VALID + '\nsurprise = "extra field"\n')


def test_permissions_and_versions():
    assert is_known_permission("tasks:write")
    assert is_known_permission("events:subscribe:tracker/events/#")
    assert not is_known_permission("events:publish")
    assert not is_known_permission("shell:exec")
    assert api_compatible("1") and api_compatible("1.0")
    assert not api_compatible("1.1") and not api_compatible("2.0") and not api_compatible("0.9")
    assert topic_matches("tracker/events/+/created", "tracker/events/tasks/created")
    assert topic_matches("tracker/events/#", "tracker/events/tasks/created")
    assert not topic_matches("tracker/events/+", "tracker/events/tasks/created")


def _plugin(tmp_path: Path, manifest: str, code: str = '"""ok"""\n') -> Path:
    package = tmp_path / "hello_plugin"
    package.mkdir(parents=True)
    (package / "taylordash-plugin.toml").write_text(manifest)
    (package / "__init__.py").write_text(code)
    return tmp_path


def _rules(root: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in scan([root]).targets[0].findings:
        found.setdefault(finding.rule_id, []).append(finding.message)
    return found


def test_manifest_rules(tmp_path: Path):
    text = VALID.replace('entry = "hello_plugin"', 'entry = "missing_module"').replace(
        "tracker/events/hello/*", "tracker/events/projects/*"
    )
    rules = _rules(_plugin(tmp_path, text))
    assert "TD206" in rules and "TD208" in rules
    assert any("unused" in m or "matched no finding" in m for m in rules["TD209"])


def test_code_must_not_outgrow_the_declared_permissions(tmp_path: Path):
    code = (
        "def run(api):\n"
        "    api.projects.create({'name': 'x'})\n"
        "    api.events.publish('tracker/events/hello/done', {})\n"
        "    api.kv.set('k', 1)\n"
    )
    rules = _rules(_plugin(tmp_path, VALID, code))
    messages = " ".join(rules["TD205"])
    assert "'projects:write'" in messages and "'storage:kv'" in messages
    assert "events:publish" not in messages


def test_invalid_config_schema_and_toml_errors_have_lines(tmp_path: Path):
    rules = _rules(_plugin(tmp_path / "a", VALID.replace('type = "object"', 'type = "objekt"')))
    assert any("config_schema" in m for m in rules["TD202"])
    broken = scan([_plugin(tmp_path / "b", VALID + "\n[broken\n")]).targets[0]
    finding = next(f for f in broken.findings if f.rule_id == "TD202")
    assert finding.line == VALID.count("\n") + 2
