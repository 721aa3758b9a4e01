"""The web UI: server-rendered pages, browser sessions in cookies, and plugin panels."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from starlette.middleware import Middleware
from starlette.requests import Request

from builtin_plugins.dashboard import routes
from builtin_plugins.dashboard.config import DashboardSettings
from builtin_plugins.dashboard.session import CookieAuth, Csrf, OidcBrowserMiddleware, RefreshMiddleware
from builtin_plugins.dashboard.views import Dashboard
from sdk import NavItem, Panel, Principal, Route, StaticFilesRoute, hookimpl

NAV = [
    NavItem("Overview", "/", "dashboard:view", 0),
    NavItem("Projects", "/projects", "projects:read", 10),
    NavItem("Events", "/events", "events:read", 20),
    NavItem("Dead letters", "/dlq", "events:read", 30),
    NavItem("Plugins", "/plugins", "plugins:read", 40),
    NavItem("MCP", "/mcp-servers", "dashboard:view", 50),
    NavItem("Users & tokens", "/users", "auth:self", 60),
    NavItem("Audit", "/audit", "audit:read", 70),
    NavItem("Logs", "/logs", "logs:read", 80),
]


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return DashboardSettings


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"dashboard:view": ["admin", "viewer"]}


@hookimpl
def startup(kernel: Any) -> None:
    settings = kernel.plugin_config("dashboard") or DashboardSettings()
    csrf = Csrf(kernel.settings.signing_key())
    kernel.services["dashboard"] = Dashboard(kernel, settings, csrf)
    kernel.services["dashboard.cookies"] = CookieAuth(kernel, csrf)


@hookimpl
def register_routes(kernel: Any) -> Sequence[Route | StaticFilesRoute]:
    return routes.ROUTES


@hookimpl
def register_middleware(kernel: Any) -> Sequence[Middleware]:
    return [Middleware(RefreshMiddleware, kernel=kernel), Middleware(OidcBrowserMiddleware, kernel=kernel)]


@hookimpl
def authenticate(request: Request, kernel: Any) -> Principal | Awaitable[Principal] | None:
    cookies: CookieAuth | None = kernel.services.get("dashboard.cookies")
    return cookies.authenticate(request) if cookies is not None else None


@hookimpl
def register_nav_items(kernel: Any) -> Sequence[NavItem]:
    return NAV


@hookimpl
def register_panels(kernel: Any) -> Sequence[Panel]:
    return [
        Panel("health", "System health", "dashboard:view", template="panels/health.html", order=10),
        Panel("live-events", "Live events", "events:read", template="panels/events.html", order=20),
    ]
