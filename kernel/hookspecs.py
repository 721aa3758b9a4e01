"""The extension surface of TaylorDash: every hook a plugin can implement.

Implement a hook with ``@sdk.hookimpl`` on a function of the same name in your plugin module.
Unless a hook says *firstresult*, every plugin's implementation is called and the kernel gathers the
results in plugin order (builtin plugins first, in their listed order, then entry-point plugins sorted
by name; ``tryfirst``/``trylast`` move an implementation). *firstresult* hooks follow pluggy's order:
``tryfirst`` implementations, then the most recently registered plugin first. A hook that raises, or returns a value of
the wrong type, disables that plugin with an error naming it; the rest of the app goes on.
Hooks whose argument is ``kernel`` receive the running :class:`kernel.app.Kernel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping, Sequence

    import click
    from pydantic import BaseModel
    from starlette.middleware import Middleware
    from starlette.requests import Request

    from kernel.app import Kernel
    from kernel.contributions import EventHandler, HealthCheck, McpTool, NavItem, Panel
    from kernel.routing import Route, StaticFilesRoute
    from kernel.security import Principal

PROJECT = "taylordash"
hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def startup(kernel: Kernel) -> Awaitable[None] | None:
    """Called once per process when the kernel starts, after the database is reachable and migrated
    and disabled plugins are removed, before routes are collected. May be a coroutine function.
    Register services here (``kernel.services["name"] = obj``). Raising disables the plugin.
    Return value ignored. Not firstresult."""


@hookspec
def shutdown(kernel: Kernel) -> Awaitable[None] | None:
    """Called once when the kernel stops, in reverse plugin order, before the database engine is
    disposed. May be a coroutine function. Errors are logged and do not stop other plugins.
    Not firstresult."""


@hookspec
def register_routes(kernel: Kernel) -> Sequence[Route | StaticFilesRoute]:
    """Called at start-up. Return the HTTP routes this plugin serves. Each ``Route`` declares its
    permission (or ``public=True``) and its pydantic request/response models; a route without either
    fails start-up (default deny), and the models document it in ``/openapi.json``. Not firstresult."""


@hookspec
def register_middleware(kernel: Kernel) -> Sequence[Middleware]:
    """Called at start-up. Return Starlette ``Middleware`` entries wrapped around every route, inside
    the kernel's request layer (request ids, access log, problem+json for uncaught exceptions) and
    outside the router: a problem a route raises reaches the middleware as a response with its status,
    not as an exception. Earlier plugins wrap later ones. Not firstresult."""


@hookspec
def register_models() -> Sequence[type[BaseModel]]:
    """Return the SQLModel table classes this plugin owns, so schema checks and ``db`` commands know
    every table. Tables are created by migrations, never by ``create_all``. Not firstresult."""


@hookspec
def register_migrations() -> str | None:
    """Return the path of this plugin's Alembic versions folder (one branch labelled with the plugin
    name, its first revision having ``down_revision = None`` and ``depends_on = "kernel"``).
    Not firstresult."""


@hookspec
def register_permissions() -> Mapping[str, Sequence[str]]:
    """Return ``{permission: [roles granted it by default]}``, e.g. ``{"projects:write": ["admin"]}``.
    Roles are ``admin`` and ``viewer``. A route naming an unregistered permission fails start-up.
    Not firstresult."""


@hookspec(firstresult=True)
def authenticate(request: Request, kernel: Kernel) -> Principal | Awaitable[Principal | None] | None:
    """Called for every request to a non-public route. Return ``None`` if the request carries no
    credential this plugin understands (the next plugin is asked); otherwise the ``Principal`` or an
    awaitable resolving to it. Raise ``Unauthorized`` for a credential that is yours but bad.
    Keep the ``None`` path cheap: it runs on every request. firstresult: the first non-None wins."""


@hookspec
def register_event_handlers(kernel: Kernel) -> Sequence[EventHandler]:
    """Called at start-up. Return handlers for event topic patterns (MQTT wildcards ``+`` and ``#``).
    A handler that keeps failing is retried with backoff, then its event goes to the dead-letter
    queue. Not firstresult."""


@hookspec(firstresult=True)
def storage_backend(kernel: Kernel, url: str) -> Any:
    """Called once at start-up with ``TD_STORAGE_URL``. Return an object-storage backend for that URL
    if this plugin serves its scheme, else ``None``. firstresult."""


@hookspec
def register_commands() -> Sequence[click.Command]:
    """Called when the ``taylordash`` CLI is built. Return click commands or groups to add at the top
    level (``taylordash <name> …``). Names must not clash with kernel commands. Not firstresult."""


@hookspec
def register_panels(kernel: Kernel) -> Sequence[Panel]:
    """Called at start-up. Return dashboard panels this plugin contributes. Not firstresult."""


@hookspec
def register_nav_items(kernel: Kernel) -> Sequence[NavItem]:
    """Called at start-up. Return dashboard navigation entries. Not firstresult."""


@hookspec
def register_health_checks(kernel: Kernel) -> Sequence[HealthCheck]:
    """Called at start-up. Return readiness checks; ``/health/ready`` runs them all concurrently and
    answers 503 naming the failing ones. Not firstresult."""


@hookspec
def register_metrics(kernel: Kernel, registry: Any) -> None:
    """Called at start-up with the kernel's prometheus ``CollectorRegistry``: create your metrics on
    it (names prefixed ``taylordash_``). Return value ignored. Not firstresult."""


@hookspec
def register_mcp_tools(kernel: Kernel) -> Sequence[McpTool]:
    """Called at start-up. Return tools TaylorDash exposes over MCP, each with its permission and a
    pydantic model for its arguments. Not firstresult."""


@hookspec
def plugin_config_schema() -> type[BaseModel] | None:
    """Return a pydantic model for this plugin's settings (``[plugins.<name>]`` in taylordash.toml,
    ``TD_PLUGINS__<NAME>__<FIELD>`` in the environment). The kernel validates them at start-up —
    a bad value stops the start with one line per problem — and hands the result out through
    ``kernel.plugin_config(name)``. Not firstresult."""
