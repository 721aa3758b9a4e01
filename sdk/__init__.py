"""The TaylorDash plugin SDK: everything a plugin author imports.

A plugin is a module (or object) whose functions carry ``@hookimpl`` and are named after hooks in
``kernel.hookspecs``. Package it with an entry point in the ``taylordash.plugins`` group::

    [project.entry-points."taylordash.plugins"]
    hello = "hello_plugin"

Third-party plugins uploaded through the registry run in the sandbox instead: their code uses the
markers of :mod:`sdk.sandbox` (``route``, ``on_event``, ``panel``, ``config_schema``) and the ``api``
object described in :mod:`sdk.api`; :mod:`sdk.testing` runs them in the real sandbox from pytest.

Names are imported lazily, so the sandbox worker can import :mod:`sdk.sandbox` without loading the
kernel.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from kernel.bus.envelope import Actor, Event
    from kernel.contributions import EventHandler, HealthCheck, McpTool, NavItem, Panel
    from kernel.errors import (
        BadRequest,
        Conflict,
        Forbidden,
        NotFound,
        PreconditionFailed,
        ProblemError,
        ServiceUnavailable,
        TooManyRequests,
        Unauthorized,
        ValidationFailed,
    )
    from kernel.pagination import Page, PageQuery, decode_cursor, encode_cursor, keyset_after, split_page
    from kernel.routing import RequestContext, Route, StaticFilesRoute, file_upload, validate_json
    from kernel.security import Principal
    from kernel.uploads import MultipartFile
    from sdk.manifest import MANIFEST_FILE, ManifestError, PluginManifest
    from sdk.sandbox import Response, config_schema, on_event, panel, route

    hookimpl: pluggy.HookimplMarker

_SOURCES: dict[str, str] = {
    "Actor": "kernel.bus.envelope",
    "Event": "kernel.bus.envelope",
    "EventHandler": "kernel.contributions",
    "HealthCheck": "kernel.contributions",
    "McpTool": "kernel.contributions",
    "NavItem": "kernel.contributions",
    "Panel": "kernel.contributions",
    "BadRequest": "kernel.errors",
    "Conflict": "kernel.errors",
    "Forbidden": "kernel.errors",
    "NotFound": "kernel.errors",
    "PreconditionFailed": "kernel.errors",
    "ProblemError": "kernel.errors",
    "ServiceUnavailable": "kernel.errors",
    "TooManyRequests": "kernel.errors",
    "Unauthorized": "kernel.errors",
    "ValidationFailed": "kernel.errors",
    "Page": "kernel.pagination",
    "PageQuery": "kernel.pagination",
    "decode_cursor": "kernel.pagination",
    "encode_cursor": "kernel.pagination",
    "keyset_after": "kernel.pagination",
    "split_page": "kernel.pagination",
    "RequestContext": "kernel.routing",
    "Route": "kernel.routing",
    "StaticFilesRoute": "kernel.routing",
    "file_upload": "kernel.routing",
    "validate_json": "kernel.routing",
    "Principal": "kernel.security",
    "MultipartFile": "kernel.uploads",
    "MANIFEST_FILE": "sdk.manifest",
    "ManifestError": "sdk.manifest",
    "PluginManifest": "sdk.manifest",
    "Response": "sdk.sandbox",
    "config_schema": "sdk.sandbox",
    "on_event": "sdk.sandbox",
    "panel": "sdk.sandbox",
    "route": "sdk.sandbox",
}


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        from kernel.hookspecs import PROJECT

        value: Any = pluggy.HookimplMarker(PROJECT)  # marks the implementation of the hook of the same name
    elif name in _SOURCES:
        value = getattr(importlib.import_module(_SOURCES[name]), name)
    else:
        raise AttributeError(f"module 'sdk' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "MANIFEST_FILE",
    "Actor",
    "BadRequest",
    "Conflict",
    "Event",
    "EventHandler",
    "Forbidden",
    "HealthCheck",
    "ManifestError",
    "McpTool",
    "MultipartFile",
    "NavItem",
    "NotFound",
    "Page",
    "PageQuery",
    "Panel",
    "PluginManifest",
    "PreconditionFailed",
    "Principal",
    "ProblemError",
    "RequestContext",
    "Response",
    "Route",
    "ServiceUnavailable",
    "StaticFilesRoute",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
    "config_schema",
    "decode_cursor",
    "encode_cursor",
    "file_upload",
    "hookimpl",
    "keyset_after",
    "on_event",
    "panel",
    "route",
    "split_page",
    "validate_json",
]
