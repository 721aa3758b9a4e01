"""The kernel's side of the ``api`` capability object: every call checked against the manifest.

Each method names the permission it needs (a function of its arguments, e.g. the topic of a publish).
:class:`PluginApi` refuses calls the declared permissions do not cover (:class:`ApiRefused`, which the
supervisor turns into a violation), times the rest and hands every call — granted or refused — to
the access recorder. The work itself is done by a backend: :class:`KernelBackend` uses the kernel's
services and database; :class:`LocalBackend` keeps state in memory for ``taylordash sandbox run``
and for tests outside a kernel.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sandbox.runner.supervisor import ApiFailed, ApiRefused
from sdk.manifest import permission_granted

EVENTS_ROOT = "tracker/events/"
MAX_KEY = 200
MAX_VALUE_BYTES = 64 * 1024

Recorder = Callable[[str, str, str, float], None]
"""``record(method, permission, outcome, duration_ms)``; outcome is ok, refused or failed."""


def _topic_permission(args: dict[str, Any]) -> str:
    return f"events:publish:{args.get('topic', '')}"


PERMISSIONS: dict[str, str | Callable[[dict[str, Any]], str] | None] = {
    "projects.list": "projects:read",
    "projects.get": "projects:read",
    "projects.create": "projects:write",
    "tasks.list": "tasks:read",
    "tasks.update": "tasks:write",
    "events.publish": _topic_permission,
    "kv.get": "storage:kv",
    "kv.set": "storage:kv",
    "kv.delete": "storage:kv",
    "kv.keys": "storage:kv",
    "config.get": None,
}
"""The permission each ``api`` method needs (``None``: every plugin may call it)."""


class Backend(Protocol):
    """Does the work of granted ``api`` calls; one coroutine per method, named ``group_method``."""

    async def config_get(self) -> dict[str, Any]: ...


class PluginApi:
    """Checks, performs and records the ``api`` calls of one plugin."""

    def __init__(self, plugin: str, permissions: list[str], backend: Any, record: Recorder | None = None) -> None:
        self.plugin = plugin
        self.permissions = list(permissions)
        self.backend = backend
        self.record = record

    def permission_for(self, method: str, args: dict[str, Any]) -> str | None:
        if method not in PERMISSIONS:
            raise ApiFailed(f"api has no method {method!r}")
        needed = PERMISSIONS[method]
        return needed(args) if callable(needed) else needed

    async def __call__(self, method: str, args: dict[str, Any]) -> Any:
        started = time.perf_counter()
        permission = self.permission_for(method, args)
        if permission is not None and not permission_granted(self.permissions, permission):
            self._record(method, permission, "refused", started)
            raise ApiRefused(permission, f"the manifest does not grant {permission!r}")
        handler: Callable[..., Awaitable[Any]] = getattr(self.backend, method.replace(".", "_"))
        try:
            value = await handler(**args)
        except TypeError as exc:
            self._record(method, permission or "", "failed", started)
            raise ApiFailed(f"bad arguments for api.{method}: {exc}") from None
        except ApiFailed:
            self._record(method, permission or "", "failed", started)
            raise
        self._record(method, permission or "", "ok", started)
        return value

    def _record(self, method: str, permission: str, outcome: str, started: float) -> None:
        if self.record is not None:
            self.record(method, permission or method, outcome, (time.perf_counter() - started) * 1000)


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise ApiFailed(f"a key is a string of 1 to {MAX_KEY} characters")
    return key


def _check_value(value: Any) -> Any:
    import json

    if len(json.dumps(value)) > MAX_VALUE_BYTES:
        raise ApiFailed(f"a value takes at most {MAX_VALUE_BYTES} bytes of JSON")
    return value


def event_type_for(topic: str) -> str:
    """``tracker/events/plugins/aging/alert`` → ``plugins.aging.alert``."""
    if not topic.startswith(EVENTS_ROOT) or "+" in topic or "#" in topic:
        raise ApiFailed(f"{topic!r} is not an event topic (tracker/events/<family>/<action>)")
    return ".".join(topic[len(EVENTS_ROOT) :].split("/"))


class LocalBackend:
    """State in memory: a private key-value dict, published events kept in a list, and optional
    projects and tasks to read (``sdk.testing`` seeds them; ``sandbox run`` has none)."""

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        projects: list[dict[str, Any]] | None = None,
        tasks: list[dict[str, Any]] | None = None,
    ) -> None:
        self.kv: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []
        self.config = dict(config or {})
        self.projects = [dict(p) for p in projects or []]
        self.tasks = [dict(t) for t in tasks or []]

    async def projects_list(self, **filters: Any) -> dict[str, Any]:
        items = [
            p for p in self.projects if all(p.get(k) == v for k, v in filters.items() if k not in ("limit", "cursor"))
        ]
        return {"items": items, "next_cursor": None}

    async def projects_get(self, id: str) -> dict[str, Any]:  # the api's argument name
        for project in self.projects:
            if str(project.get("id")) == str(id):
                return project
        raise ApiFailed(f"no project {id!r}")

    async def projects_create(self, **fields: Any) -> dict[str, Any]:
        project = {"id": str(uuid.uuid4()), **fields}
        self.projects.append(project)
        return project

    async def tasks_list(self, project_id: str, **filters: Any) -> dict[str, Any]:
        items = [t for t in self.tasks if str(t.get("project_id")) == str(project_id)]
        items = [t for t in items if all(t.get(k) == v for k, v in filters.items() if k not in ("limit", "cursor"))]
        return {"items": items, "next_cursor": None}

    async def tasks_update(self, id: str, changes: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        for task in self.tasks:
            if str(task.get("id")) == str(id):
                task.update(changes)
                return task
        raise ApiFailed(f"no task {id!r}")

    async def events_publish(
        self, topic: str, payload: dict[str, Any] | None = None, subject_id: str | None = None
    ) -> dict[str, Any]:
        event_type_for(topic)
        event = {"id": str(uuid.uuid4()), "topic": topic, "payload": dict(payload or {}), "subject_id": subject_id}
        self.published.append(event)
        return {"id": event["id"], "topic": topic}

    async def kv_get(self, key: str, default: Any = None) -> Any:
        return self.kv.get(_check_key(key), default)

    async def kv_set(self, key: str, value: Any) -> None:
        self.kv[_check_key(key)] = _check_value(value)

    async def kv_delete(self, key: str) -> bool:
        return self.kv.pop(_check_key(key), None) is not None

    async def kv_keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.kv if k.startswith(prefix))

    async def config_get(self) -> dict[str, Any]:
        return dict(self.config)
