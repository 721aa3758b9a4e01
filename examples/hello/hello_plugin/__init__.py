"""Greets the caller: an example of a route, a permission and a setting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, Field

from sdk import RequestContext, Route, hookimpl


class HelloSettings(BaseModel):
    """Settings under ``[plugins.hello]`` / ``TD_PLUGINS__HELLO__*``."""

    greeting: str = Field("hello", min_length=1, max_length=40)


class HelloQuery(BaseModel):
    name: str = Field("world", min_length=1, max_length=80)


class Greeting(BaseModel):
    message: str
    caller_role: str


async def greet(ctx: RequestContext) -> Greeting:
    settings: HelloSettings = ctx.kernel.plugin_config("hello")
    return Greeting(message=f"{settings.greeting}, {ctx.query.name}", caller_role=ctx.principal.role)


@hookimpl
def plugin_config_schema() -> type[BaseModel]:
    return HelloSettings


@hookimpl
def register_permissions() -> Mapping[str, Sequence[str]]:
    return {"hello:read": ["admin", "viewer"]}


@hookimpl
def register_routes() -> Sequence[Route]:
    return [
        Route(
            "/api/v1/hello",
            greet,
            permission="hello:read",
            query=HelloQuery,
            response=Greeting,
            summary="Greet the caller",
            tags=("hello",),
        ),
    ]
