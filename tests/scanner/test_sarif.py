"""SARIF 2.1.0 output validates against the OASIS schema and carries what code scanning needs."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft7Validator

from sandbox.scanner import render, scan
from tests.scanner.builders import SAMPLES, build

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json").read_text())


def _sarif(targets: list[Path]) -> dict:
    return json.loads(render(scan(targets), "sarif"))


def test_sarif_validates_against_the_2_1_0_schema(tmp_path: Path):
    targets = [
        build("wheel", SAMPLES / "malicious" / "obfuscated_exec", tmp_path / "a"),
        build("sdist", SAMPLES / "malicious" / "setup_cmdclass", tmp_path / "b"),
        build("zip", SAMPLES / "malicious" / "typosquat", tmp_path / "c"),
        SAMPLES / "malicious" / "bad_manifest",
        build("wheel", SAMPLES / "benign" / "cache_keys", tmp_path / "d"),
    ]
    log = _sarif(targets)
    Draft7Validator.check_schema(SCHEMA)
    errors = sorted(Draft7Validator(SCHEMA).iter_errors(log), key=lambda e: list(e.path))
    assert errors == [], [f"{list(e.path)}: {e.message}" for e in errors]
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    assert {"TD101", "TD107", "TD113", "TD203", "TD204", "B102"} <= set(ids)
    assert all("security-severity" in r["properties"] for r in rules)


def test_sarif_locations_and_suppressions(tmp_path: Path):
    folder = SAMPLES / "malicious" / "ssh_key_writer"
    wheel = build("wheel", SAMPLES / "benign" / "cache_keys", tmp_path)
    run = _sarif([folder, wheel])["runs"][0]
    home = next(r for r in run["results"] if r["ruleId"] == "TD110")
    location = home["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == (folder / "keys_plugin/__init__.py").as_uri()
    source = (folder / "keys_plugin/__init__.py").read_text().splitlines()
    assert source[location["region"]["startLine"] - 1].strip() == 'with open(path, "a") as fh:'
    suppressed = next(r for r in run["results"] if r["ruleId"] == "B324")
    assert suppressed["suppressions"][0]["kind"] == "external"
    assert "sha1 only names cache entries" in suppressed["suppressions"][0]["justification"]
    assert suppressed["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "cache_keys/__init__.py"


def test_relative_folder_targets_give_repository_relative_uris(monkeypatch):
    monkeypatch.chdir(SAMPLES)
    run = _sarif([Path("malicious/native_loader")])["runs"][0]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert "malicious/native_loader/native_plugin/__init__.py" in uris


def test_a_clean_scan_is_valid_sarif_with_no_results():
    log = _sarif([SAMPLES / "benign" / "velocity_tool"])
    assert list(Draft7Validator(SCHEMA).iter_errors(log)) == []
    assert log["runs"][0]["results"] == []
