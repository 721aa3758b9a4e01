"""HTTP layer of the sandbox: the workers running in this process and the panels they contribute."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sdk import RequestContext, Route


class SandboxPanel(BaseModel):
    plugin: str
    id: str
    title: str
    permission: str
    order: int
    url: str
    asset: str
    asset_path: str


class Worker(BaseModel):
    name: str
    pid: int | None
    running: bool
    restarts: int
    cold_start_ms: float
    limits: dict[str, str]
    load_error: dict[str, Any] | None


async def workers(ctx: RequestContext) -> list[Worker]:
    return [Worker(**item) for item in ctx.kernel.services["sandbox"].status()]


async def panels(ctx: RequestContext) -> list[SandboxPanel]:
    return [SandboxPanel(**item) for item in ctx.kernel.services["sandbox"].panels()]


ROUTES = [
    Route("/api/v1/sandbox/workers", workers, permission="sandbox:read", response=list[Worker],
          summary="Sandbox workers of this process", tags=("plugins",)),
    Route("/api/v1/sandbox/panels", panels, permission="sandbox:read", response=list[SandboxPanel],
          summary="Panels of the running sandboxed plugins, with their assets", tags=("plugins",)),
]  # fmt: skip
