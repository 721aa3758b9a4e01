"""TaylorDash as an MCP server: the SDK's ``MCPServer`` over streamable HTTP at ``/mcp``.

``/mcp`` is an ordinary declared route (permission ``mcp:connect``), so the kernel authenticates every
request (a bearer API token or access token through the ``authenticate`` hook; none → 401) before
the SDK's session manager sees it. The tools are those plugins contribute through
``register_mcp_tools``; ``tools/list`` shows a caller only the tools its role may use, and a call
checks the tool's permission again with the principal of the request that carries it.

The session manager needs a running task group (``session_manager.run()``): it is entered in a task
of its own on the first request (the tools are only known once every plugin has started) and left
at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ListToolsResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict
from pydantic_core import to_jsonable_python
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from builtin_plugins.mcp.config import McpSettings
from kernel import __version__
from sdk import McpTool, Principal, ProblemError, RequestContext

log = structlog.get_logger("taylordash.mcp")


class NoArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _principal_of(request: Any) -> Principal | None:
    state = getattr(request, "scope", {}).get("state") or {}
    return state.get("principal")


class McpEndpoint:
    """The ``MCPServer`` of one kernel and the task running its session manager."""

    def __init__(self, kernel: Any, settings: McpSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.server: MCPServer | None = None
        self._permissions: dict[str, str] = {}
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    # -- building ----------------------------------------------------------------------------------
    def _tool(self, spec: McpTool) -> Tool:
        model = spec.input_model or NoArguments

        class Arguments(model, ArgModelBase):  # type: ignore[misc, valid-type]
            def model_dump_one_level(self) -> dict[str, Any]:
                return {"arguments": self}

        kernel = self.kernel

        async def run(arguments: BaseModel, ctx: Context) -> Any:
            principal = _principal_of(ctx.request_context.request)
            if principal is None or not kernel.permissions.allows(principal, spec.permission):
                raise ToolError(f"this tool requires the permission {spec.permission!r}")
            try:
                result = await spec.handler(arguments, principal)
            except ProblemError as exc:
                raise ToolError(f"{exc.title}: {exc.detail or exc.title}") from None
            data = to_jsonable_python(result)
            return data if isinstance(data, dict) else {"result": data}

        self._permissions[spec.name] = spec.permission
        return Tool(
            fn=run,
            name=spec.name,
            description=spec.description,
            parameters=model.model_json_schema(),
            fn_metadata=FuncMetadata(arg_model=Arguments),
            is_async=True,
            context_kwarg="ctx",
            annotations=ToolAnnotations(**spec.annotations) if spec.annotations else None,
        )

    def build(self) -> MCPServer:
        tools = [self._tool(spec) for _, spec in self.kernel.mcp_tools]
        server = MCPServer(
            "taylordash",
            version=__version__,
            instructions="Projects, components, tasks and events of this TaylorDash instance.",
            tools=tools,
            middleware=[self._only_permitted_tools],
        )
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(self.settings.allowed_hosts),
            allowed_origins=list(self.settings.allowed_origins),
        )
        server.streamable_http_app(streamable_http_path="/mcp", transport_security=security)
        return server

    async def _only_permitted_tools(self, ctx: Any, call_next: Any) -> Any:
        result = await call_next(ctx)
        if ctx.method != "tools/list":
            return result
        principal = _principal_of(ctx.request)

        def permitted(name: str) -> bool:
            permission = self._permissions.get(name)
            return (
                principal is not None
                and permission is not None
                and self.kernel.permissions.allows(principal, permission)
            )

        if isinstance(result, ListToolsResult):
            return result.model_copy(update={"tools": [t for t in result.tools if permitted(t.name)]})
        if isinstance(result, dict) and isinstance(result.get("tools"), list):
            return {**result, "tools": [t for t in result["tools"] if permitted(str(t.get("name")))]}
        return result

    # -- running -----------------------------------------------------------------------------------
    async def _run(self, server: MCPServer) -> None:
        async with server.session_manager.run():
            self._ready.set()
            await self._stop.wait()

    async def ensure_running(self) -> MCPServer:
        if self.server is not None and self._ready.is_set():
            return self.server
        async with self._lock:
            if self.server is None:
                self.server = self.build()
                self._runner = asyncio.create_task(self._run(self.server), name="mcp-endpoint")
            waiter = asyncio.create_task(self._ready.wait())
            await asyncio.wait({waiter, self._runner}, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[arg-type]
            if not self._ready.is_set():
                waiter.cancel()
                self._runner.result()  # type: ignore[union-attr]  # raises the runner's error
        return self.server

    async def close(self) -> None:
        self._stop.set()
        if self._runner is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._runner, 10)

    async def handle(self, ctx: RequestContext) -> Response:
        server = await self.ensure_running()
        return _Handover(server)


class _Handover(Response):
    """A response that hands the request over to the SDK's streamable-HTTP session manager."""

    def __init__(self, server: MCPServer) -> None:
        super().__init__()
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)
