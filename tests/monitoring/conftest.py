"""Fixtures of the monitoring tests: the real app with header auth and quick monitoring settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from kernel.app import KernelApp, create_app
from kernel.settings import Settings
from tests.support.plugins import HeaderAuth
from tests.support.services import free_port

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}
TOKEN = "scrape-token-for-tests-0123456789"
QUICK = {
    "scrape_token": TOKEN,
    "log_flush_seconds": 0.05,
    "sampler_interval_seconds": 0,
    "retention_interval_seconds": 0,
    "stream_poll_seconds": 0.05,
}


@pytest.fixture
def monitoring_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings at log level info (so access logs exist) with quick monitoring settings; keyword
    arguments override monitoring settings."""

    def make(**monitoring: Any) -> Settings:
        return make_settings(log_level="info", plugins={"monitoring": {**QUICK, **monitoring}})

    return make


@pytest.fixture
def make_app(monitoring_settings: Callable[..., Settings]) -> Callable[..., KernelApp]:
    def make(*extra: tuple[str, object], **monitoring: Any) -> KernelApp:
        return create_app(monitoring_settings(**monitoring), [("testauth", HeaderAuth()), *extra])

    return make


@asynccontextmanager
async def served(app: KernelApp) -> AsyncIterator[str]:
    """``app`` behind a real uvicorn server on a loopback port, in this event loop."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``{(sample name, sorted labels): value}`` of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, tuple(sorted(labels.items()))))


async def flush_logs(app: KernelApp) -> None:
    """Write what the log writer has queued now."""
    writer = app.kernel.services["monitoring"].writer
    await asyncio.sleep(0)
    await writer.flush()
