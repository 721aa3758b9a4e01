"""Object storage backends, task attachments and backups."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel

from builtin_plugins.storage import cli, routes, service
from builtin_plugins.storage.config import StorageSettings
from builtin_plugins.storage.models import TABLES
from sdk import EventHandler, HealthCheck, Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return StorageSettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(TABLES)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"attachments:read": ["admin", "viewer"], "attachments:write": ["admin"]}


@hookimpl
def storage_backend(kernel: Any, url: str) -> Any:
    return service.backend_for(kernel, url)


@hookimpl
def startup(kernel: Any) -> Awaitable[None]:
    return service.start_storage(kernel)


@hookimpl
def shutdown(kernel: Any) -> Awaitable[None]:
    return service.stop_storage(kernel)


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES


@hookimpl
def register_health_checks(kernel: Any) -> Sequence[HealthCheck]:
    return [HealthCheck("storage", kernel.services["storage"].check, timeout=5.0)]


@hookimpl
def register_event_handlers(kernel: Any) -> Sequence[EventHandler]:
    attachments = kernel.services["attachments"]
    return [EventHandler("tracker/events/tasks/deleted", attachments.on_task_deleted, name="remove-attachments")]


@hookimpl
def register_commands() -> Sequence[click.Command]:
    return cli.COMMANDS
