"""Event pipeline: mirror, dead-letter queue, event API and live stream."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from builtin_plugins.events import models
from builtin_plugins.events.config import EventsSettings
from sdk import McpTool, Route, hookimpl


@hookimpl
def plugin_config_schema() -> type[EventsSettings]:
    return EventsSettings


@hookimpl
def register_models() -> Sequence[type]:
    return [models.MirroredEvent, models.EventClaim, models.DeadLetterEntry]


@hookimpl
def register_migrations() -> str:
    return str(Path(__file__).parent / "migrations")


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"events:read": ["admin", "viewer"], "events:admin": ["admin"]}


@hookimpl
def startup(kernel: Any) -> None:
    from builtin_plugins.events.runtime import start

    start(kernel)


@hookimpl
async def shutdown(kernel: Any) -> None:
    from builtin_plugins.events.runtime import stop

    await stop(kernel)


@hookimpl
def register_routes() -> Sequence[Route]:
    from builtin_plugins.events.routes import ROUTES

    return ROUTES


@hookimpl
def register_metrics(kernel: Any, registry: Any) -> None:
    from builtin_plugins.events.runtime import register_metrics as register

    register(kernel, registry)


@hookimpl
def register_commands() -> Sequence[Any]:
    from builtin_plugins.events.cli import COMMANDS

    return COMMANDS


@hookimpl
def register_mcp_tools(kernel: Any) -> Sequence[McpTool]:
    from builtin_plugins.events.mcp import tools

    return tools(kernel)
