"""Every declared route of the app, all plugins enabled: anonymous → 401, viewer writes → 403,
admin → neither. Routes are read from the kernel's route table, so new ones are covered automatically."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kernel.routing import Route, StaticFilesRoute, path_parameters
from sdk import Principal, RequestContext, hookimpl

SAMPLES = {"uuid": lambda: str(uuid.uuid4()), "int": lambda: "1", "float": lambda: "1.5"}


def concrete(path: str) -> str:
    for name, convertor in path_parameters(path):
        token = f"{{{name}:{convertor}}}" if f"{{{name}:{convertor}}}" in path else f"{{{name}}}"
        path = path.replace(token, SAMPLES.get(convertor, lambda: "x")())
    return path


async def first_status(app: Any, method: str, path: str, headers: dict[str, str]) -> int:
    """The status the app answers with; the exchange is cut once the response starts (streams too)."""
    status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    body_sent = False

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.shield(status)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and not status.done():
            status.set_result(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    task = asyncio.create_task(app(scope, receive, send))
    try:
        done, _ = await asyncio.wait({task, status}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done and not status.done():
            task.result()
            raise AssertionError(f"{method} {path} ended without a response")
        result = await asyncio.wait_for(status, 10)
        await asyncio.wait({task}, timeout=5)  # let audit writes and streams finish
        return result
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class LaterPlugin:
    """Stands for any plugin added later: its routes must be walked without touching the test."""

    @hookimpl
    def register_permissions(self) -> dict[str, list[str]]:
        return {"later:read": ["admin", "viewer"], "later:write": ["admin"]}

    @hookimpl
    def register_routes(self) -> list[Route]:
        async def endpoint(ctx: RequestContext) -> dict[str, str]:
            return {"ok": "yes"}

        return [
            Route("/api/v1/later/{item_id:uuid}", endpoint, permission="later:read"),
            Route("/api/v1/later/{item_id:uuid}", endpoint, methods=("PUT", "DELETE"), permission="later:write"),
        ]


async def test_every_route_requires_authentication_and_its_permission(auth_app):
    async with auth_app(plugins=[("later", LaterPlugin())]) as env:
        routes = [(p, r) for p, r in env.kernel.routes if isinstance(r, Route) and not r.public]
        assert not [r for _, r in env.kernel.routes if not isinstance(r, Route | StaticFilesRoute)]
        walked: set[str] = set()
        failures: list[str] = []
        for plugin, route in routes:
            for method in route.methods:
                path = concrete(route.path)
                where = f"{plugin}: {method} {route.path}"
                anonymous = await first_status(env.app, method, path, {})
                viewer = await first_status(env.app, method, path, env.viewer)
                admin = await first_status(env.app, method, path, env.admin)
                if anonymous != 401:
                    failures.append(f"{where}: no token → {anonymous}, expected 401")
                # Writes need a permission viewers lack, unless the route grants its permission to viewers
                # on purpose (/mcp: a protocol endpoint whose tools check their own permissions).
                viewer_may = env.kernel.permissions.allows(Principal("viewer", "viewer"), route.permission)
                if method in ("POST", "PUT", "PATCH", "DELETE") and viewer != 403 and not viewer_may:
                    failures.append(f"{where}: viewer → {viewer}, expected 403")
                if viewer == 401:
                    failures.append(f"{where}: a valid viewer token was refused (401)")
                if admin in (401, 403):
                    failures.append(f"{where}: admin → {admin}")
                walked.add(plugin)
        assert not failures, "\n".join(failures)
    active_with_routes = {p for p, r in env.kernel.routes if isinstance(r, Route) and not r.public}
    assert walked == active_with_routes
    assert {"auth", "plugins", "later"} <= walked
    assert len(routes) >= 15


class UndeclaredPlugin:
    @hookimpl
    def register_routes(self) -> list[Route]:
        async def endpoint(ctx: RequestContext) -> dict[str, str]:
            return {}

        return [Route("/api/v1/open-door", endpoint, methods=("POST",))]


async def test_a_route_without_a_permission_stops_the_start(auth_app):
    import pytest

    with pytest.raises(Exception, match="declares no permission"):
        async with auth_app(plugins=[("undeclared", UndeclaredPlugin())], users=False):
            pass
