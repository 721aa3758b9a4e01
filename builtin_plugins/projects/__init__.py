"""Projects, components, tasks and their dependency graph."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from builtin_plugins.projects import mcp, routes
from builtin_plugins.projects.models import MODELS
from builtin_plugins.projects.runtime import Projects, ProjectsSettings
from sdk import McpTool, Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return ProjectsSettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(MODELS)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"projects:read": ["admin", "viewer"], "projects:write": ["admin"]}


@hookimpl
def startup(kernel: Any) -> None:
    kernel.services["projects"] = Projects(kernel, kernel.plugin_config("projects") or ProjectsSettings())


@hookimpl
async def shutdown(kernel: Any) -> None:
    runtime = kernel.services.pop("projects", None)
    if runtime is not None:
        await runtime.close()


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES


@hookimpl
def register_mcp_tools(kernel: Any) -> Sequence[McpTool]:
    return mcp.tools(kernel)
