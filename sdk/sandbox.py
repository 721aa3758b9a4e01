"""What sandboxed plugin code imports: ``from sdk import route, on_event, panel, config_schema, Response``.

These markers only record what a plugin contributes; the worker reads the records once the plugin's
entry module has loaded and the kernel turns them into routes and event handlers, checked against
the manifest like the panels. This module is deliberately free of kernel imports so a worker starts
quickly.

Inside the sandbox every plugin module also sees a global ``api`` (see :mod:`sdk.api` for its
methods), whose calls travel to the kernel and are checked against the manifest's permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[..., Any]


@dataclass
class Contributions:
    """Everything the markers recorded while a plugin loaded."""

    routes: dict[str, tuple[str, tuple[str, ...], str, Handler]] = field(default_factory=dict)
    events: dict[str, tuple[str, Handler]] = field(default_factory=dict)
    panels: list[dict[str, Any]] = field(default_factory=list)
    config_schema: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "routes": [
                {"key": k, "path": p, "methods": list(m), "summary": s} for k, (p, m, s, _) in self.routes.items()
            ],
            "events": [{"key": k, "pattern": p} for k, (p, _) in self.events.items()],
            "panels": list(self.panels),
            "config_schema": self.config_schema,
        }


_collected = Contributions()


def collected() -> Contributions:
    """The contributions recorded so far (read by the worker, not by plugin code)."""
    return _collected


def reset() -> None:
    """Forget every recorded contribution (the worker calls this before loading a plugin)."""
    global _collected
    _collected = Contributions()


def route(
    path: str, methods: list[str] | tuple[str, ...] = ("GET",), summary: str = ""
) -> Callable[[Handler], Handler]:
    """Serve ``handler(request)`` at ``/api/v1/x/<plugin><path>`` for ``methods``.

    ``request`` is a dict: ``method``, ``path``, ``params`` (path parameters), ``query``, ``body``
    (parsed JSON or ``None``) and ``principal`` (``{"id", "role"}``). Return any JSON value, or a
    :class:`Response` to choose the status code. The path must be declared in the manifest's
    ``[[contributions.routes]]`` and the plugin needs the ``http:route`` permission."""
    wanted = tuple(m.upper() for m in methods)

    def mark(handler: Handler) -> Handler:
        for method in wanted:
            _collected.routes[f"{method} {path}"] = (path, (method,), summary, handler)
        return handler

    return mark


def on_event(pattern: str) -> Callable[[Handler], Handler]:
    """Call ``handler(event)`` for every event whose topic matches the MQTT filter ``pattern``.
    ``event`` is the envelope as a dict. The pattern must be listed in the manifest's
    ``contributions.event_subscriptions`` or covered by an ``events:subscribe:<pattern>`` permission."""

    def mark(handler: Handler) -> Handler:
        _collected.events[f"{pattern} {len(_collected.events)}"] = (pattern, handler)
        return handler

    return mark


def panel(id: str, title: str, order: int = 100) -> None:
    """Declare a dashboard panel in code, beside the manifest's ``[[contributions.panels]]`` entry
    it must match (a panel the manifest does not declare is refused, as an undeclared route is).
    The panel's page is the package's ``panels/<id>/index.html``, which the dashboard serves and
    frames in a sandboxed ``<iframe>``; it needs the ``dashboard:panel`` permission."""
    _collected.panels.append({"id": id, "title": title, "order": order})


def config_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare the JSON Schema of the plugin's configuration in code, where tests and readers see it.
    The registry validates what operators set against the manifest's ``contributions.config_schema``,
    so declare it there as well. Returns ``schema``."""
    _collected.config_schema = dict(schema)
    return schema


class Response:
    """A route result with an explicit status code: ``return Response({"created": 1}, status=201)``."""

    def __init__(self, body: Any = None, status: int = 200) -> None:
        self.body = body
        self.status = int(status)


class PermissionDenied(Exception):
    """Raised by an ``api`` call the manifest's permissions do not cover."""


class ApiError(Exception):
    """Raised by an ``api`` call the kernel could not complete (bad arguments, missing object)."""


PUBLIC = {
    "route": route,
    "on_event": on_event,
    "panel": panel,
    "config_schema": config_schema,
    "Response": Response,
    "PermissionDenied": PermissionDenied,
    "ApiError": ApiError,
}
"""The names plugin code can import from ``sdk`` inside the sandbox."""
