"""MCP: a manager for MCP servers (registry, supervision, tool catalog and calls), and TaylorDash as
an MCP server at ``/mcp``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from builtin_plugins.mcp import runtime
from builtin_plugins.mcp.config import McpSettings
from builtin_plugins.mcp.models import TABLES
from sdk import EventHandler, Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return McpSettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(TABLES)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {
        "mcp:read": ["admin", "viewer"],
        "mcp:admin": ["admin"],
        "mcp:call": ["admin"],
        "mcp:connect": ["admin", "viewer"],
    }


@hookimpl
def startup(kernel: Any) -> None:
    runtime.start(kernel)


@hookimpl
async def shutdown(kernel: Any) -> None:
    await runtime.stop(kernel)


@hookimpl
def register_routes(kernel: Any) -> Sequence[Route]:
    from builtin_plugins.mcp.routes import ROUTES

    settings: McpSettings = kernel.plugin_config("mcp") or McpSettings()
    return [*ROUTES, runtime.endpoint_route(kernel)] if settings.serve else list(ROUTES)


@hookimpl
def register_event_handlers(kernel: Any) -> Sequence[EventHandler]:
    return [EventHandler(runtime.CONTROL_TOPIC, partial(runtime.on_control, kernel), name="mcp.control")]


@hookimpl
def register_metrics(kernel: Any, registry: Any) -> None:
    runtime.register_metrics(kernel, registry)


@hookimpl
def register_commands() -> Sequence[click.Command]:
    from builtin_plugins.mcp.cli import COMMANDS

    return COMMANDS
