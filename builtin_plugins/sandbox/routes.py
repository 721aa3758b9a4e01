"""HTTP layer of the sandbox: the workers running in this process."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sdk import RequestContext, Route


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


ROUTES = [
    Route("/api/v1/sandbox/workers", workers, permission="sandbox:read", response=list[Worker],
          summary="Sandbox workers of this process", tags=("plugins",)),
]  # fmt: skip
