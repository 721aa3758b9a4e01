"""A real third-party package, installed with pip, found through its entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plugins import HeaderAuth

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    return target


async def test_entry_point_plugin_serves_its_route(installed: Path, monkeypatch, make_settings):
    monkeypatch.syspath_prepend(str(installed))
    settings = make_settings(plugins={"hello": {"greeting": "howdy"}})
    from kernel.app import create_app
    from tests.conftest import running

    async with running(create_app(settings, [("testauth", HeaderAuth())], configure_logs=False)) as client:
        hello = await client.get("/api/v1/hello?name=ada", headers={"x-test-role": "viewer"})
        plugins = await client.get("/api/v1/plugins/hello", headers={"x-test-role": "viewer"})
        spec = (await client.get("/openapi.json")).json()
    assert hello.status_code == 200
    assert hello.json() == {"message": "howdy, ada", "caller_role": "viewer"}
    record = plugins.json()
    assert record["builtin"] is False and record["version"] == "1.0.0" and record["active"] is True
    assert spec["paths"]["/api/v1/hello"]["get"]["x-permission"] == "hello:read"
