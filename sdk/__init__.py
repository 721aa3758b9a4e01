"""The TaylorDash plugin SDK: everything a plugin author imports.

A plugin is a module (or object) whose functions carry ``@hookimpl`` and are named after hooks in
``kernel.hookspecs``. Package it with an entry point in the ``taylordash.plugins`` group::

    [project.entry-points."taylordash.plugins"]
    hello = "hello_plugin"
"""

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
from kernel.hookspecs import PROJECT
from kernel.pagination import Page, PageQuery, decode_cursor, encode_cursor, keyset_after, split_page
from kernel.routing import RequestContext, Route, StaticFilesRoute
from kernel.security import Principal
from sdk.manifest import MANIFEST_FILE, ManifestError, PluginManifest

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Decorator marking a function as the implementation of the hook of the same name."""

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
    "Route",
    "ServiceUnavailable",
    "StaticFilesRoute",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
    "decode_cursor",
    "encode_cursor",
    "hookimpl",
    "keyset_after",
    "split_page",
]
