"""Plugin registry: upload, scan and lifecycle of third-party plugins; every plugin's state for operators."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from builtin_plugins.plugins import routes
from builtin_plugins.plugins.config import RegistrySettings
from builtin_plugins.plugins.models import TABLES
from builtin_plugins.plugins.service import RegistryService
from sdk import Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return RegistrySettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(TABLES)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"plugins:read": ["admin", "viewer"], "plugins:admin": ["admin"]}


@hookimpl
def startup(kernel: Any) -> None:
    kernel.services["plugins"] = RegistryService(kernel, kernel.plugin_config("plugins") or RegistrySettings())


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES
