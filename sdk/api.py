"""The ``api`` object a sandboxed plugin sees as a global: types for editors and type checkers.

Inside the sandbox ``api`` is provided by the worker; every call travels to the kernel, which checks
it against the manifest's permissions (a refused call raises ``sdk.PermissionDenied`` and is
recorded as a violation) and records it in ``plugin_api_access``. Arguments and results are JSON
data. RestrictedPython refuses annotated assignments, so to type-check plugin code declare ``api``
in a stub next to the module (``my_plugin/__init__.pyi``, which the sandbox never loads)::

    from sdk.api import Api
    api: Api
"""

from __future__ import annotations

from typing import Any, Protocol


class Projects(Protocol):
    """``api.projects`` — needs ``projects:read`` (list, get) or ``projects:write`` (create)."""

    def list(self, **filters: Any) -> dict[str, Any]:
        """A page of projects: ``{"items": [...], "next_cursor": ...}``; filters as ``GET /api/v1/projects``
        takes them (``status``, ``q``, ``limit``, ``cursor``, …)."""
        ...

    def get(self, id: str) -> dict[str, Any]:
        """One project by id."""
        ...

    def create(self, **fields: Any) -> dict[str, Any]:
        """Create a project (``name``, ``description``, ``status``, …); the plugin is the actor."""
        ...


class Tasks(Protocol):
    """``api.tasks`` — needs ``tasks:read`` (list) or ``tasks:write`` (update)."""

    def list(self, project_id: str, **filters: Any) -> dict[str, Any]:
        """A page of a project's tasks; filters as ``GET /api/v1/projects/{id}/tasks`` takes them."""
        ...

    def update(self, id: str, changes: dict[str, Any], version: int | None = None) -> dict[str, Any]:
        """Change a task; ``version`` makes it conditional (as ``If-Match``)."""
        ...


class Events(Protocol):
    """``api.events`` — needs ``events:publish:<topic>`` covering the topic."""

    def publish(
        self, topic: str, payload: dict[str, Any] | None = None, subject_id: str | None = None
    ) -> dict[str, Any]:
        """Publish an event on ``topic`` (``tracker/events/<plugin>/<action>``); returns ``{"id", "topic"}``."""
        ...


class KeyValue(Protocol):
    """``api.kv`` — the plugin's private store; needs ``storage:kv``. Keys: 1 to 200 characters;
    values: JSON up to 64 KiB."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> bool: ...

    def keys(self, prefix: str = "") -> list[str]: ...


class Config(Protocol):
    """``api.config`` — the plugin's own configuration, as the operator set it (no permission needed)."""

    def get(self) -> dict[str, Any]: ...


class Api(Protocol):
    """The capability object of a sandboxed plugin."""

    projects: Projects
    tasks: Tasks
    events: Events
    kv: KeyValue
    config: Config


__all__ = ["Api", "Config", "Events", "KeyValue", "Projects", "Tasks"]
