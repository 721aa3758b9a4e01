"""Authentication, sessions, API tokens, roles and audit."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.requests import Request

from builtin_plugins.auth import admin_routes, cli, routes
from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.middleware import AuditMiddleware, SecurityHeadersMiddleware
from builtin_plugins.auth.models import TABLES
from builtin_plugins.auth.service import AuthService
from sdk import Principal, Route, hookimpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PERMISSIONS: dict[str, list[str]] = {
    "auth:self": ["admin", "viewer"],
    "tokens:write": ["admin"],
    "users:read": ["admin"],
    "users:admin": ["admin"],
    "audit:read": ["admin"],
}


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return AuthSettings


@hookimpl
def register_models() -> Sequence[type[BaseModel]]:
    return list(TABLES)


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return PERMISSIONS


@hookimpl
def startup(kernel: Any) -> Awaitable[AuthService]:
    return AuthService.start(kernel)


@hookimpl
def shutdown(kernel: Any) -> Awaitable[None] | None:
    auth: AuthService | None = kernel.services.get("auth")
    return auth.stop() if auth is not None else None


@hookimpl
def register_routes(kernel: Any) -> Sequence[Route]:
    auth: AuthService = kernel.services["auth"]
    return [*routes.ROUTES, *admin_routes.ROUTES, *(routes.OIDC_ROUTES if auth.oidc is not None else ())]


@hookimpl
def register_middleware(kernel: Any) -> Sequence[Middleware]:
    auth: AuthService = kernel.services["auth"]
    return [
        Middleware(SecurityHeadersMiddleware, settings=auth.settings),
        Middleware(AuditMiddleware, audit=auth.audit),
    ]


@hookimpl
def authenticate(request: Request, kernel: Any) -> Principal | Awaitable[Principal] | None:
    auth: AuthService | None = kernel.services.get("auth")
    return auth.authenticate(request) if auth is not None else None


@hookimpl
def register_commands() -> Sequence[click.Command]:
    return cli.COMMANDS
