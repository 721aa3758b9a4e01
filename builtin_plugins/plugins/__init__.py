"""Plugin registry: lets operators see which plugins run, their versions, hooks and errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from builtin_plugins.plugins import routes
from sdk import Route, hookimpl


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"plugins:read": ["admin", "viewer"], "plugins:admin": ["admin"]}


@hookimpl
def register_routes() -> Sequence[Route]:
    return routes.ROUTES
