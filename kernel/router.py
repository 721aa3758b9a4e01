"""A Starlette router that looks up candidate routes by the first path segments.

Starlette tries every route in order, running each one's regex until one matches; with the routes of
every plugin in one table that scan is a noticeable share of a cheap request. Most routes begin with
three literal segments (``/api/v1/projects/…``), so the router keeps, per such key, the routes that
can match a path starting with it, in their original order, merged with the routes that have no such
key (shorter or parametrised prefixes, mounts). A path is matched against its candidates only; when
a path matches but not for the request's method, the answer is a 405 naming every method the path
accepts; when none matches, Starlette's full scan runs as before (trailing-slash redirects, 404).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from kernel.middleware import send_problem

KEY_SEGMENTS = 3


def _route_key(route: BaseRoute) -> tuple[str, ...] | None:
    """The first segments every path this route matches starts with, or ``None``."""
    if not isinstance(route, Route):
        return None
    literal, brace, _ = route.path.partition("{")
    # With a parameter, the last piece of the literal part is empty or a segment the parameter cuts.
    complete = literal.split("/")[1:-1] if brace else literal.split("/")[1:]
    return tuple(complete[:KEY_SEGMENTS]) if len(complete) >= KEY_SEGMENTS else None


def _path_key(path: str) -> tuple[str, ...] | None:
    parts = path.split("/", KEY_SEGMENTS + 1)[1:]
    return tuple(parts[:KEY_SEGMENTS]) if len(parts) >= KEY_SEGMENTS else None


class IndexedRouter(Router):
    """:class:`starlette.routing.Router` with candidate routes looked up by path prefix."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._indexed: tuple[int, int] | None = None
        self._by_key: dict[tuple[str, ...], list[BaseRoute]] = {}
        self._unkeyed: list[BaseRoute] = []

    def _index(self) -> None:
        keys = [_route_key(route) for route in self.routes]
        self._unkeyed = [route for route, key in zip(self.routes, keys, strict=True) if key is None]
        self._by_key = {}
        for key in {k for k in keys if k is not None}:
            self._by_key[key] = [r for r, k in zip(self.routes, keys, strict=True) if k is None or k == key]
        self._indexed = (id(self.routes), len(self.routes))

    def invalidate(self) -> None:
        """Rebuild the index before the next request (call after changing :attr:`routes` in place)."""
        self._indexed = None

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match ``path``, in table order."""
        if self._indexed != (id(self.routes), len(self.routes)):
            self._index()
        key = _path_key(path)
        return self._by_key.get(key, self._unkeyed) if key is not None else self._unkeyed

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)
        allowed: set[str] = set()
        # Behind a root path the index (keyed by the full path) does not apply: every route is tried.
        routes = self.routes if scope.get("root_path") else self.candidates(scope["path"])
        for route in routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and isinstance(route, Route):
                if not allowed:
                    scope["route"] = route  # the path's template, for the access log and metrics
                    scope.update(child_scope)
                allowed.update(route.methods or ())
        if allowed:
            # The path exists, not for this method: ``Allow`` names the methods of every route
            # declared for it (Starlette's own scan would name only the first route's).
            await send_problem(HTTPException(405, headers={"Allow": ", ".join(sorted(allowed))}), scope, receive, send)
            return
        await super().app(scope, receive, send)
