"""Wiring the plugin into a running kernel: the manager, the /mcp endpoint, autostart and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CollectorRegistry

from builtin_plugins.mcp.config import McpSettings
from builtin_plugins.mcp.service import McpManager, ToolMetrics
from sdk import Event, RequestContext, Route

if TYPE_CHECKING:
    from builtin_plugins.mcp.server import McpEndpoint

log = structlog.get_logger("taylordash.mcp")
CONTROL_TOPIC = "tracker/events/mcp/control"


def start(kernel: Any) -> None:
    """Register ``kernel.services["mcp"]``; servers marked autostart start once the kernel serves
    (one-off commands that start the plugins leave them alone). The /mcp endpoint is built on first use."""
    settings: McpSettings = kernel.plugin_config("mcp") or McpSettings()
    manager = McpManager(kernel, settings)
    kernel.services["mcp"] = manager
    if settings.autostart:
        manager.autostart_task = asyncio.get_running_loop().create_task(_autostart_when_serving(kernel, manager))


async def _autostart_when_serving(kernel: Any, manager: McpManager) -> None:
    # The kernel sets no event once it has started: look again shortly.
    while not kernel.started:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    if kernel.bus.running:
        await manager.autostart()


async def stop(kernel: Any) -> None:
    manager: McpManager | None = kernel.services.pop("mcp", None)
    endpoint: McpEndpoint | None = kernel.services.pop("mcp_endpoint", None)
    if manager is not None:
        task = manager.autostart_task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await manager.close()
    if endpoint is not None:
        await endpoint.close()


def register_metrics(kernel: Any, registry: CollectorRegistry) -> None:
    manager: McpManager | None = kernel.services.get("mcp")
    if manager is not None:
        manager.metrics = ToolMetrics(registry)
        manager.metrics.count(manager.connections)


async def on_control(kernel: Any, event: Event) -> None:
    """A ``mcp.control`` event (written by the CLI): reconcile the named server with the registry."""
    manager: McpManager | None = kernel.services.get("mcp")
    server = event.payload.get("server")
    if manager is not None and isinstance(server, str):
        await manager.reconcile(server)


def endpoint(kernel: Any) -> McpEndpoint:
    """The /mcp endpoint of ``kernel``, made on first use (it loads the MCP SDK's server side)."""
    found: McpEndpoint | None = kernel.services.get("mcp_endpoint")
    if found is None:
        from builtin_plugins.mcp.server import McpEndpoint

        settings: McpSettings = kernel.plugin_config("mcp") or McpSettings()
        found = kernel.services["mcp_endpoint"] = McpEndpoint(kernel, settings)
    return found


def endpoint_route(kernel: Any) -> Route:
    async def handle(ctx: RequestContext) -> Any:
        return await endpoint(ctx.kernel).handle(ctx)

    return Route(
        "/mcp",
        handle,
        methods=("GET", "POST", "DELETE"),
        permission="mcp:connect",
        media_type="text/event-stream",
        summary="TaylorDash as an MCP server (streamable HTTP); bearer token required",
        tags=("mcp",),
        problems={401: "No or bad credential", 421: "Host not allowed"},
        name="mcp_endpoint",
        in_openapi=False,
    )
