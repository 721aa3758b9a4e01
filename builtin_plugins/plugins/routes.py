"""HTTP layer of the plugin registry."""

from __future__ import annotations

from pydantic import BaseModel

from sdk import NotFound, RequestContext, Route


class PluginOut(BaseModel):
    """One plugin as the kernel sees it."""

    name: str
    version: str
    module: str
    builtin: bool
    enabled: bool
    active: bool
    hooks: list[str]
    error: str | None
    description: str


class PluginList(BaseModel):
    items: list[PluginOut]
    next_cursor: str | None = None


async def list_plugins(ctx: RequestContext) -> PluginList:
    records = ctx.kernel.host.records.values()
    return PluginList(items=[PluginOut(**r.as_dict()) for r in records])


async def get_plugin(ctx: RequestContext) -> PluginOut:
    record = ctx.kernel.host.records.get(ctx.path_params["name"])
    if record is None:
        raise NotFound(f"no plugin named {ctx.path_params['name']!r}")
    return PluginOut(**record.as_dict())


ROUTES = [
    Route(
        "/api/v1/plugins",
        list_plugins,
        permission="plugins:read",
        response=PluginList,
        summary="List plugins",
        tags=("plugins",),
        name="plugins_list",
    ),
    Route(
        "/api/v1/plugins/{name}",
        get_plugin,
        permission="plugins:read",
        response=PluginOut,
        summary="Show one plugin",
        tags=("plugins",),
        problems={404: "No such plugin"},
        name="plugins_get",
    ),
]
