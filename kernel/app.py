"""The kernel object and the ASGI app factory ``create_app(settings)``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from kernel import __version__
from kernel.bus import Bus, Event
from kernel.contributions import EventHandler, HealthCheck, McpTool, NavItem, Panel
from kernel.db import Database
from kernel.errors import ConfigError, ProblemError, StartupError
from kernel.logging import configure_logging
from kernel.middleware import RequestContextMiddleware, no_route
from kernel.migrate import Migrator
from kernel.models import disabled_plugins
from kernel.openapi import build_openapi
from kernel.plugins import (
    BUILTIN_PLUGINS,
    PluginHost,
    anything,
    mapping_of_roles,
    model_class_or_none,
    optional_path,
    sequence_of,
)
from kernel.router import IndexedRouter
from kernel.routing import RequestContext, Route, StaticFilesRoute, compile_route, compile_static
from kernel.security import PermissionRegistry, Principal
from kernel.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = structlog.get_logger("taylordash.kernel")


class NotReady(ProblemError):
    status, slug, title = 503, "not-ready", "Not Ready"


class Kernel:
    """The running host: settings, database, plugins and everything they contributed."""

    def __init__(
        self,
        settings: Settings,
        plugins: Sequence[tuple[str, object]] = (),
        builtins: Sequence[str] = BUILTIN_PLUGINS,
    ) -> None:
        self.settings = settings
        self.metrics = CollectorRegistry(auto_describe=True)
        self.host = PluginHost(self.metrics, extra=plugins, builtins=builtins)
        self.host.register()
        self.db = Database(settings)
        self.bus = Bus(settings, self.db, self.metrics)
        self.services: dict[str, Any] = {}
        self.permissions = PermissionRegistry()
        self.routes: list[tuple[str, Route | StaticFilesRoute]] = []
        self.middleware: list[Middleware] = []
        self.health_checks: list[HealthCheck] = [HealthCheck("database", self.db.ping)]
        self.event_handlers: list[tuple[str, EventHandler]] = []
        self.panels: list[tuple[str, Panel]] = []
        self.nav_items: list[tuple[str, NavItem]] = []
        self.mcp_tools: list[tuple[str, McpTool]] = []
        self._plugin_configs: dict[str, BaseModel] = {}
        self._openapi: dict[str, Any] | None = None
        self._asgi: Starlette | None = None
        self.started = False
        self._plugins_running = False
        self.serving = False
        """Whether this start serves requests and events (``False`` for one-off commands)."""

    @property
    def pm(self) -> Any:
        return self.host.pm

    # -- services plugins use -------------------------------------------------------------------
    async def authenticate(self, request: Request) -> Principal | None:
        """Ask the ``authenticate`` hook who made ``request`` (``None``: nobody we know)."""
        return await self.host.first_result("authenticate", request=request, kernel=self)

    async def publish(self, session: AsyncSession, event: Event) -> None:
        """Add ``event`` to the outbox in ``session``'s transaction: it is published once the caller
        commits, and never if the transaction rolls back. Does not commit or flush."""
        await self.bus.publish(session, event)

    def plugin_config(self, name: str) -> Any:
        """The validated settings of plugin ``name`` (an instance of its ``plugin_config_schema``)."""
        return self._plugin_configs.get(name)

    # -- plugins attached while running (sandboxed plugins) ----------------------------------------
    def attach_plugin(self, name: str, obj: object, version: str = "0", description: str = "") -> None:
        """Add the plugin object ``obj`` while the kernel runs (the sandbox's proxy for a plugin the
        registry enabled). Before the kernel has started its contributions are collected with every
        other plugin's; afterwards its permissions, routes, event handlers and panels are collected at
        once and the live app serves its routes. A route clash detaches it again and raises."""
        self.host.add_runtime(name, obj, version, description)
        if not self.started:
            return
        try:
            for _, permissions in self.host.collect("register_permissions", mapping_of_roles, only=name):
                self.permissions.add(name, permissions)
            routes = self.host.collect("register_routes", sequence_of(Route, StaticFilesRoute), only=name, kernel=self)
            self.routes.extend((name, route) for _, items in routes for route in items)
            self._check_routes()
        except Exception:
            self.detach_plugin(name)
            raise
        self.event_handlers.extend(self._flatten("register_event_handlers", EventHandler, only=name))
        self.panels.extend(self._flatten("register_panels", Panel, only=name))
        self.nav_items.extend(self._flatten("register_nav_items", NavItem, only=name))
        self._contributions_changed()

    def detach_plugin(self, name: str) -> None:
        """Remove a plugin added with :meth:`attach_plugin`: its routes, handlers and panels go."""
        self.host.remove_runtime(name)
        self.routes = [(p, r) for p, r in self.routes if p != name]
        self.event_handlers = [(p, h) for p, h in self.event_handlers if p != name]
        self.panels = [(p, x) for p, x in self.panels if p != name]
        self.nav_items = [(p, x) for p, x in self.nav_items if p != name]
        if self.started:
            self._contributions_changed()

    def _contributions_changed(self) -> None:
        self._openapi = None
        self.bus.bind(self.event_handlers, fail=self.host.fail)
        if self._asgi is not None:
            self._asgi.router.routes[:] = self._compiled_routes()
            self._asgi.router.invalidate()

    def _compiled_routes(self) -> list[Any]:
        return [
            compile_route(route, self) if isinstance(route, Route) else compile_static(route)
            for _, route in self.routes
        ]

    def migrator(self) -> Migrator:
        locations = [path for _, path in self.host.collect("register_migrations", optional_path) if path]
        return Migrator(self.db, locations)

    # -- lifecycle ------------------------------------------------------------------------------
    async def prepare_schema(self, migrate: bool | None = None) -> None:
        """Bring the schema to head when allowed, else refuse to run on a schema behind head."""
        migrator = self.migrator()
        try:
            pending = await migrator.pending()
        except Exception as exc:
            raise StartupError(f"cannot reach the database at {self.db.url!r}: {exc}") from exc
        if not pending:
            return
        allowed = self.settings.should_migrate_on_start if migrate is None else migrate
        if not allowed:
            raise StartupError(
                f"the database schema is behind head ({len(pending)} migration(s) pending, first {pending[0]}); "
                "run `taylordash db upgrade` or start with `taylordash serve --migrate`"
            )
        log.info("schema.upgrade", pending=len(pending))
        await migrator.upgrade()

    async def start(self, migrate: bool | None = None, *, serve_bus: bool = True) -> None:
        """Everything between "process up" and "ready": schema, plugins, contributions, the bus.
        ``serve_bus=False`` (one-off commands) starts the plugins without relaying or consuming events."""
        await self.prepare_schema(migrate)
        for name in await disabled_plugins(self.db):
            if name in self.host.records:
                self.host.records[name].enabled = False
                if self.host.pm.has_plugin(name):
                    self.host.pm.unregister(name=name)
        self._validate_plugin_configs()
        self.serving = serve_bus
        self._plugins_running = True
        await self.host.call_each("startup", isolate=True, kernel=self)
        try:
            self._collect_contributions()
            self.bus.bind(self.event_handlers, fail=self.host.fail)
            if serve_bus:
                await self.bus.start()
        except BaseException:
            # The plugins have started their work (log writer, workers, child processes): a start
            # that fails after them shuts them down again instead of leaving them running.
            await self.stop()
            raise
        self.started = True
        log.info("kernel.ready", plugins=[r.name for r in self.host.active])

    async def stop(self) -> None:
        """Undo whatever ``start`` got to: the bus, the plugins' shutdown hooks, the database pool.
        Safe to call at any point, and more than once."""
        # No event is handled once plugins shut down, but they can still send a last broadcast.
        # Each step runs even when one before it raised: a step skipped would leave connections
        # (the relay's leader lock with them), workers or child processes behind.
        try:
            await self.bus.quiesce()
        finally:
            try:
                if self._plugins_running:
                    self._plugins_running = False
                    await self.host.call_each("shutdown", isolate=False, reverse=True, kernel=self)
            finally:
                try:
                    await self.bus.close()
                finally:
                    self.started = False
                    await self.db.dispose()

    def _validate_plugin_configs(self) -> None:
        problems: list[str] = []
        for name, model in self.host.collect("plugin_config_schema", model_class_or_none):
            if model is None:
                continue
            try:
                self._plugin_configs[name] = model.model_validate(self.settings.plugin_settings(name))
            except ValidationError as exc:
                for err in exc.errors():
                    field = "__".join(str(p) for p in err["loc"]).upper()
                    problems.append(f"TD_PLUGINS__{name.upper()}__{field}: {err['msg']}")
        if problems:
            raise ConfigError(problems)

    def _collect_contributions(self) -> None:
        for name, permissions in self.host.collect("register_permissions", mapping_of_roles):
            self.permissions.add(name, permissions)
        self.routes = [("kernel", route) for route in self._kernel_routes()]
        for name, routes in self.host.collect("register_routes", sequence_of(Route, StaticFilesRoute), kernel=self):
            self.routes.extend((name, route) for route in routes)
        self._check_routes()
        self.middleware = [
            m for _, ms in self.host.collect("register_middleware", sequence_of(Middleware), kernel=self) for m in ms
        ]
        self.health_checks[1:] = [
            c
            for _, cs in self.host.collect("register_health_checks", sequence_of(HealthCheck), kernel=self)
            for c in cs
        ]
        self.event_handlers = self._flatten("register_event_handlers", EventHandler)
        self.panels = self._flatten("register_panels", Panel)
        self.nav_items = self._flatten("register_nav_items", NavItem)
        self.mcp_tools = self._flatten("register_mcp_tools", McpTool)
        self.host.collect("register_metrics", anything, kernel=self, registry=self.metrics)
        # Routes of plugins disabled while collecting (wrong return type elsewhere) go too.
        active = {r.name for r in self.host.active} | {"kernel"}
        self.routes = [(name, route) for name, route in self.routes if name in active]

    def _flatten(self, hook: str, kind: type, only: str | None = None) -> list[tuple[str, Any]]:
        return [
            (name, item)
            for name, items in self.host.collect(hook, sequence_of(kind), only=only, kernel=self)
            for item in items
        ]

    def _check_routes(self) -> None:
        seen: dict[tuple[str, str], str] = {}
        for plugin, route in self.routes:
            if isinstance(route, StaticFilesRoute):
                continue
            where = f"plugin {plugin!r}: route {'/'.join(route.methods)} {route.path}"
            if not route.public and not route.permission:
                raise StartupError(f"{where} declares no permission; name one or mark the route public")
            if route.permission and route.permission not in self.permissions:
                raise StartupError(f"{where} names the unregistered permission {route.permission!r}")
            for method in route.methods:
                key = (method, route.path)
                if key in seen:
                    raise StartupError(f"{where} is already served by plugin {seen[key]!r}")
                seen[key] = plugin

    # -- the kernel's own routes -----------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        if self._openapi is None:
            declared = [(p, r) for p, r in self.routes if isinstance(r, Route)]
            self._openapi = build_openapi(declared, title="TaylorDash", version=__version__)
        return self._openapi

    async def readiness(self) -> dict[str, str]:
        """Run every health check concurrently; ``{name: "ok" | error}``."""

        async def run(check: HealthCheck) -> str:
            try:
                await asyncio.wait_for(check.check(), check.timeout)
                return "ok"
            except TimeoutError:
                return f"timed out after {check.timeout}s"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

        results = await asyncio.gather(*(run(c) for c in self.health_checks))
        return {c.name: r for c, r in zip(self.health_checks, results, strict=True)}

    def _kernel_routes(self) -> list[Route | StaticFilesRoute]:
        async def live(ctx: RequestContext) -> dict[str, str]:
            return {"status": "ok"}

        async def ready(ctx: RequestContext) -> dict[str, Any]:
            checks = await self.readiness()
            failing = {name: result for name, result in checks.items() if result != "ok"}
            if failing:
                raise NotReady(f"failing checks: {', '.join(sorted(failing))}", checks=checks)
            return {"status": "ready", "checks": checks}

        async def openapi(ctx: RequestContext) -> JSONResponse:
            return JSONResponse(self.openapi())

        async def docs(ctx: RequestContext) -> HTMLResponse:
            return HTMLResponse(DOCS_HTML)

        return [
            Route(
                "/health/live",
                live,
                public=True,
                response=dict[str, str],
                summary="The process is up",
                tags=("health",),
                name="health_live",
            ),
            Route(
                "/health/ready",
                ready,
                public=True,
                response=dict[str, Any],
                tags=("health",),
                summary="Every health check passes",
                problems={503: "A health check fails"},
                name="health_ready",
            ),
            Route("/openapi.json", openapi, public=True, summary="This document", tags=("docs",), name="openapi"),
            Route(
                "/docs",
                docs,
                public=True,
                media_type="text/html",
                summary="API documentation",
                tags=("docs",),
                name="docs",
            ),
            StaticFilesRoute("/static/kernel", STATIC_DIR, name="kernel_static"),
        ]

    # -- ASGI -------------------------------------------------------------------------------------
    def build_asgi(self) -> Starlette:
        app = KernelStarlette(routes=self._compiled_routes(), middleware=self.middleware)
        # Same routes and behaviour, looked up by path prefix instead of one regex per route.
        app.router = IndexedRouter(routes=app.router.routes, default=no_route)
        app.state.kernel = self
        app.middleware_stack = app.build_middleware_stack()
        self._asgi = app
        return app


class KernelStarlette(Starlette):
    """Starlette with the kernel's middleware stack: the kernel's request layer (ids, access log, and
    problem+json for anything that escapes) outermost, then the plugins' middleware, then the router.

    Starlette's own error and exception-handler layers are left out: compiled routes, the router and
    static files render their problems themselves, and the request layer answers everything else, so
    two layers (and two wrapped ``send`` calls per message) less run on every request."""

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed([Middleware(RequestContextMiddleware), *self.user_middleware]):
            app = cls(app, *args, **kwargs)
        return app


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TaylorDash API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/kernel/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/static/kernel/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/kernel/docs.js"></script></body></html>"""


class KernelApp:
    """The ASGI entry point. The routed app is built during lifespan start-up, once plugins have been
    resolved against the database; lifespan shutdown stops the kernel."""

    def __init__(self, kernel: Kernel, migrate: bool | None = None) -> None:
        self.kernel = kernel
        self.migrate = migrate
        self._app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        app = self._app
        if app is None:
            raise RuntimeError("the kernel has not started: run the app with its lifespan")
        scope["app"] = app  # what Starlette.__call__ does, without its extra frame on every request
        await app.middleware_stack(scope, receive, send)  # type: ignore[misc]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.kernel.start(self.migrate)
                    self._app = self.kernel.build_asgi()
                except Exception as exc:
                    log.error("kernel.start_failed", error=str(exc))
                    await self.kernel.stop()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    raise
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.kernel.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(
    settings: Settings,
    plugins: Sequence[tuple[str, object]] = (),
    *,
    builtins: Sequence[str] = BUILTIN_PLUGINS,
    migrate: bool | None = None,
    configure_logs: bool = True,
) -> KernelApp:
    """Build the ASGI app for ``settings`` with the builtin plugins, entry-point plugins and ``plugins``
    (``[(name, module_or_object)]``, registered after them)."""
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format)
    return KernelApp(Kernel(settings, plugins, builtins), migrate)


def create_app_from_env() -> KernelApp:
    """Factory for ``uvicorn --factory`` (used by ``serve --workers N``)."""
    from kernel.settings import load_settings

    return create_app(load_settings())
