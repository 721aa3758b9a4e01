"""Metrics, structured logs in the database, system sampling and retention."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.requests import Request

from builtin_plugins.monitoring import cli, routes
from builtin_plugins.monitoring.config import MonitoringSettings
from builtin_plugins.monitoring.metrics import HttpMetricsMiddleware
from builtin_plugins.monitoring.models import TABLES
from builtin_plugins.monitoring.service import MonitoringService
from sdk import Principal, Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return MonitoringSettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(TABLES)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {
        "metrics:read": ["admin"],
        "logs:read": ["admin"],
        "retention:read": ["admin"],
        "retention:write": ["admin"],
    }


@hookimpl
def startup(kernel: Any) -> Awaitable[None]:
    service = MonitoringService(kernel, kernel.plugin_config("monitoring"))
    kernel.services["monitoring"] = service
    kernel.services["retention"] = service.retention
    return service.start()


@hookimpl
def shutdown(kernel: Any) -> Awaitable[None] | None:
    service: MonitoringService | None = kernel.services.pop("monitoring", None)
    kernel.services.pop("retention", None)
    return service.stop() if service is not None else None


@hookimpl(tryfirst=True)
def authenticate(request: Request, kernel: Any) -> Principal | None:
    service: MonitoringService | None = kernel.services.get("monitoring")
    return service.authenticate(request) if service is not None else None


@hookimpl(tryfirst=True)
def register_middleware(kernel: Any) -> Sequence[Middleware]:
    return [Middleware(HttpMetricsMiddleware, metrics=kernel.services["monitoring"].metrics)]


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES


@hookimpl
def register_commands() -> Sequence[click.Command]:
    return cli.COMMANDS
