"""Helpers for the sandbox tests: plugin packages built from folders, installed through the registry."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scanner.builders import build
from tests.support.plugins import HeaderAuth

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}
HERE = Path(__file__).resolve().parent
PROBE = HERE / "plugins" / "probe"
ESCAPES = HERE / "escapes"
EXAMPLES = HERE.parent.parent / "examples"


def plugins() -> list[tuple[str, object]]:
    return [("testauth", HeaderAuth())]


def sandbox_settings(**overrides: Any) -> dict[str, Any]:
    """Plugin settings for tests: short timeouts and backoff, quarantine only when asked."""
    values: dict[str, Any] = {
        "sandbox": {"call_timeout": 4.0, "cpu_seconds_per_call": 2.0, "restart_backoff_cap": 1.0,
                    "access_flush_seconds": 0.2},
        "plugins": {"quarantine_after": 100_000},
    }  # fmt: skip
    for plugin, settings in overrides.items():
        values.setdefault(plugin, {}).update(settings)
    return values


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds}s (last result {result!r})")
        await asyncio.sleep(interval)


async def install(
    client: httpx.AsyncClient, source: Path, out: Path, kind: str = "zip", override: str | None = None
) -> dict[str, Any]:
    """Build ``source`` as ``kind``, upload it through the registry API and enable it."""
    package = build(kind, source, out / f"{source.name}-{kind}")
    uploaded = await client.post(
        "/api/v1/plugins",
        files={"file": (package.name, package.read_bytes(), "application/octet-stream")},
        headers=ADMIN,
    )
    assert uploaded.status_code == 201, uploaded.text
    name = uploaded.json()["name"]
    body = {"override_reason": override} if override else None
    enabled = await client.post(f"/api/v1/plugins/{name}/enable", json=body, headers=ADMIN)
    assert enabled.status_code == 200, enabled.text
    return enabled.json()


async def worker(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    listing = await client.get("/api/v1/sandbox/workers", headers=ADMIN)
    assert listing.status_code == 200, listing.text
    return next((w for w in listing.json() if w["name"] == name), None)


async def violations(client: httpx.AsyncClient, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = await client.get(f"/api/v1/plugins/{name}/violations", params=params, headers=ADMIN)
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


@pytest.fixture
def corpus_plugin(tmp_path: Path) -> Path:
    """The probe plugin with every escape attempt as a module and a ``corpus.run(name)`` dispatcher."""
    source = tmp_path / "corpus-src" / "probe"
    shutil.copytree(PROBE, source)
    package = source / "probe_plugin" / "escapes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    lines = ["# ruff: noqa", "def run(name):"]
    for path in sorted(ESCAPES.glob("*.py")):
        shutil.copy(path, package / path.name)
        lines += [
            f"    if name == {path.stem!r}:",
            f"        from probe_plugin.escapes import {path.stem}",
            f'        return getattr({path.stem}, "result", None)',
        ]
    lines.append("    return 'unknown'")
    (source / "probe_plugin" / "corpus.py").write_text("\n".join(lines) + "\n")
    return source
