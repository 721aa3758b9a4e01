"""Sandbox: runs enabled third-party plugins in RestrictedPython worker processes, one per plugin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click
from pydantic import BaseModel

from builtin_plugins.sandbox import routes
from builtin_plugins.sandbox.config import SandboxSettings
from sandbox.runner import cli
from sandbox.runner.manager import Metrics, SandboxManager
from sdk import Route, hookimpl


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return SandboxSettings


@hookimpl
async def startup(kernel: Any) -> None:
    settings: SandboxSettings = kernel.plugin_config("sandbox") or SandboxSettings()
    manager = SandboxManager(
        kernel, settings.limits(), flush_seconds=settings.access_flush_seconds, backoff_cap=settings.restart_backoff_cap
    )
    kernel.services["sandbox"] = manager
    await manager.start_enabled()


@hookimpl
async def shutdown(kernel: Any) -> None:
    manager = kernel.services.get("sandbox")
    if manager is not None:
        await manager.close()


@hookimpl
def register_metrics(kernel: Any, registry: Any) -> None:
    manager = kernel.services.get("sandbox")
    if manager is not None:
        manager.metrics = Metrics.create(registry, manager)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"sandbox:read": ["admin", "viewer"]}


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES


@hookimpl
def register_commands() -> Sequence[click.Command]:
    return [cli.sandbox, cli.plugin]
