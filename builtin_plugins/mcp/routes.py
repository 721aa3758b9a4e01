"""The MCP manager's HTTP API under ``/api/v1/mcp``: registry, lifecycle, tool catalog and calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from builtin_plugins.mcp.schemas import (
    CallIn,
    CallOut,
    ExportQuery,
    ImportDoc,
    ImportQuery,
    ImportResult,
    ServerIn,
    ServerOut,
    ServerPage,
    ServerPatch,
    ToolPage,
    ToolQuery,
    ToolsAllowList,
)
from builtin_plugins.mcp.service import McpManager
from sdk import PageQuery, RequestContext, Route, decode_cursor, encode_cursor

READ, ADMIN, CALL = "mcp:read", "mcp:admin", "mcp:call"
TAGS = ("mcp",)
T = TypeVar("T")


def _manager(ctx: RequestContext) -> McpManager:
    return ctx.kernel.services["mcp"]


def _page(items: Sequence[T], key: Callable[[T], str], query: PageQuery) -> tuple[list[T], str | None]:
    after = decode_cursor(query.cursor, 1)[0] if query.cursor else None
    rest = [item for item in items if after is None or key(item) > str(after)]
    page = rest[: query.limit]
    more = len(rest) > query.limit
    return page, encode_cursor([key(page[-1])]) if more and page else None


async def list_servers(ctx: RequestContext) -> ServerPage:
    manager = _manager(ctx)
    rows, cursor = _page(await manager.rows(), lambda r: r.name, ctx.query)
    return ServerPage(items=[manager.out(row) for row in rows], next_cursor=cursor)


async def create_server(ctx: RequestContext) -> ServerOut:
    manager = _manager(ctx)
    return manager.out(await manager.create(ctx.body, ctx.principal))


async def get_server(ctx: RequestContext) -> ServerOut:
    manager = _manager(ctx)
    return manager.out(await manager.row(ctx.path_params["name"]), detail=True)


async def update_server(ctx: RequestContext) -> ServerOut:
    manager = _manager(ctx)
    return manager.out(await manager.update(ctx.path_params["name"], ctx.body, ctx.principal))


async def set_allowed_tools(ctx: RequestContext) -> ServerOut:
    manager = _manager(ctx)
    patch = ServerPatch(allowed_tools=ctx.body.allowed_tools)
    return manager.out(await manager.update(ctx.path_params["name"], patch, ctx.principal))


async def delete_server(ctx: RequestContext) -> None:
    await _manager(ctx).delete(ctx.path_params["name"], ctx.principal)


def _action(name: str) -> Callable[[RequestContext], Any]:
    async def act(ctx: RequestContext) -> ServerOut:
        manager = _manager(ctx)
        row = await getattr(manager, name)(ctx.path_params["name"], ctx.principal)
        return manager.out(row)

    act.__name__ = f"{name}_server"
    return act


async def import_servers(ctx: RequestContext) -> ImportResult:
    return await _manager(ctx).import_servers(ctx.body, ctx.query.replace, ctx.principal)


async def export_servers(ctx: RequestContext) -> dict[str, Any]:
    return await _manager(ctx).export(ctx.query.include_secrets, ctx.principal)


async def list_tools(ctx: RequestContext) -> ToolPage:
    tools = await _manager(ctx).catalog()
    if ctx.query.server is not None:
        tools = [t for t in tools if t.server == ctx.query.server]
    if ctx.query.allowed is not None:
        tools = [t for t in tools if t.allowed == ctx.query.allowed]
    page, cursor = _page(tools, lambda t: t.name, ctx.query)
    return ToolPage(items=page, next_cursor=cursor)


async def call_tool(ctx: RequestContext) -> CallOut:
    params = ctx.path_params
    return await _manager(ctx).call(params["name"], params["tool"], ctx.body.arguments, ctx.principal)


class ToolListQuery(PageQuery, ToolQuery):
    """Filters and paging of the tool catalog."""


SERVER = "/api/v1/mcp/servers/{name}"
ROUTES: list[Route] = [
    Route(
        "/api/v1/mcp/servers",
        list_servers,
        permission=READ,
        query=PageQuery,
        response=ServerPage,
        summary="List MCP servers with their state (secrets masked)",
        tags=TAGS,
        name="mcp_servers_list",
    ),
    Route(
        "/api/v1/mcp/servers",
        create_server,
        methods=("POST",),
        permission=ADMIN,
        body=ServerIn,
        response=ServerOut,
        status_code=201,
        summary="Register an MCP server (stdio command or streamable-HTTP url)",
        tags=TAGS,
        problems={409: "A server of that name exists"},
        name="mcp_servers_create",
    ),
    Route(
        SERVER,
        get_server,
        permission=READ,
        response=ServerOut,
        summary="Show one MCP server with its state and the tail of its stderr",
        tags=TAGS,
        problems={404: "No such server"},
        name="mcp_servers_get",
    ),
    Route(
        SERVER,
        update_server,
        methods=("PATCH",),
        permission=ADMIN,
        body=ServerPatch,
        response=ServerOut,
        summary="Change an MCP server (a running one is restarted when how to reach it changed)",
        tags=TAGS,
        problems={404: "No such server"},
        name="mcp_servers_update",
    ),
    Route(
        SERVER,
        delete_server,
        methods=("DELETE",),
        permission=ADMIN,
        status_code=204,
        summary="Stop and remove an MCP server",
        tags=TAGS,
        problems={404: "No such server"},
        name="mcp_servers_delete",
    ),
    *(
        Route(
            f"{SERVER}/{action}",
            _action(action),
            methods=("POST",),
            permission=ADMIN,
            response=ServerOut,
            summary=summary,
            tags=TAGS,
            problems={404: "No such server"},
            name=f"mcp_servers_{action}",
        )
        for action, summary in (
            ("start", "Start an MCP server (and keep it running across kernel restarts)"),
            ("stop", "Stop an MCP server (it stays stopped across kernel restarts)"),
            ("restart", "Restart an MCP server"),
        )
    ),
    Route(
        f"{SERVER}/allowed-tools",
        set_allowed_tools,
        methods=("PUT",),
        permission=ADMIN,
        body=ToolsAllowList,
        response=ServerOut,
        summary="Set the tools callers may use (null allows every tool)",
        tags=TAGS,
        problems={404: "No such server"},
        name="mcp_servers_allowed_tools",
    ),
    Route(
        "/api/v1/mcp/import",
        import_servers,
        methods=("POST",),
        permission=ADMIN,
        body=ImportDoc,
        query=ImportQuery,
        response=ImportResult,
        summary='Import servers from {"mcpServers": {name: {command, args, env, url, headers}}}',
        tags=TAGS,
        name="mcp_import",
    ),
    Route(
        "/api/v1/mcp/export",
        export_servers,
        permission=ADMIN,
        query=ExportQuery,
        response=dict[str, Any],
        summary="Export servers as an mcpServers document (secrets masked unless include_secrets=true)",
        tags=TAGS,
        name="mcp_export",
    ),
    Route(
        "/api/v1/mcp/tools",
        list_tools,
        permission=READ,
        query=ToolListQuery,
        response=ToolPage,
        summary="The tools of every connected MCP server, namespaced <server>.<tool>",
        tags=TAGS,
        name="mcp_tools_list",
    ),
    Route(
        f"{SERVER}/tools/{{tool}}/call",
        call_tool,
        methods=("POST",),
        permission=CALL,
        body=CallIn,
        response=CallOut,
        summary="Call a tool of an MCP server; arguments are validated against its input schema",
        tags=TAGS,
        problems={
            403: "The tool is not on the server's allow list",
            404: "No such server or tool",
            409: "The server is not ready",
            422: "The arguments do not match the tool's input schema",
            502: "The server failed the call",
            504: "The call timed out",
        },
        name="mcp_tools_call",
    ),
]
