"""Run a plugin in the real sandbox from a pytest test, in a few lines::

    from pathlib import Path
    from sdk.testing import SandboxedPlugin

    def test_stats():
        with SandboxedPlugin(Path(__file__).parent.parent, projects=[{"id": "p1", "name": "Apollo"}]) as plugin:
            answer = plugin.get("/stats")
            assert answer.status == 200 and answer.body["projects"] == 1
            assert plugin.violations == []

The plugin's package is loaded from its folder by a real worker process — same limits, same
RestrictedPython rules, same permission checks against its manifest — with an in-memory ``api``:
``projects`` and ``tasks`` you pass in, a key-value store (:attr:`SandboxedPlugin.kv`), published
events (:attr:`SandboxedPlugin.published`) and the configuration you give.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.runner.api import LocalBackend, PluginApi
from sandbox.runner.limits import Limits
from sandbox.runner.supervisor import Supervisor, WorkerSpec
from sdk.manifest import MANIFEST_FILE, PluginManifest, topic_matches


class PluginLoadError(RuntimeError):
    """The plugin's code failed to load in the sandbox (the message lists the violations)."""


@dataclass
class Answer:
    """What a route or event handler call produced."""

    status: int
    body: Any
    outcome: str
    stdout: str = ""
    violations: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, str] | None = None


def find_manifest(folder: Path) -> Path:
    """The manifest inside ``folder`` (a plugin project folder or its package)."""
    direct = folder / MANIFEST_FILE
    if direct.is_file():
        return direct
    found = sorted(folder.glob(f"*/{MANIFEST_FILE}"))
    if not found:
        raise FileNotFoundError(f"no {MANIFEST_FILE} in {folder} or its sub-folders")
    return found[0]


class SandboxedPlugin:
    """A plugin running in a sandbox worker, driven synchronously from a test."""

    def __init__(
        self,
        folder: str | Path,
        *,
        projects: list[dict[str, Any]] | None = None,
        tasks: list[dict[str, Any]] | None = None,
        config: dict[str, Any] | None = None,
        permissions: list[str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        manifest_path = find_manifest(Path(folder).resolve())
        self.manifest = PluginManifest.load(manifest_path)
        self.root = manifest_path.parent.parent
        self.backend = LocalBackend(config, projects, tasks)
        self.violations: list[dict[str, str]] = []
        granted = self.manifest.permissions if permissions is None else permissions
        api = PluginApi(self.manifest.name, granted, self.backend)
        spec = WorkerSpec(self.manifest.name, self.root, self.manifest.entry, limits or Limits())
        self.supervisor = Supervisor(spec, api, self._collect)
        self._loop = asyncio.new_event_loop()

    async def _collect(self, plugin: str, found: list[dict[str, str]], context: dict[str, Any]) -> None:
        self.violations.extend(found)

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> SandboxedPlugin:
        """Start the worker; raises :class:`PluginLoadError` when the plugin's code does not load."""
        self._loop.run_until_complete(self.supervisor.start())
        if self.supervisor.load_error is not None:
            error, found = self.supervisor.load_error, list(self.violations)
            self.stop()
            lines = [f"{error.get('type')}: {error.get('message')}", *(f"{v['kind']}: {v['detail']}" for v in found)]
            raise PluginLoadError("the plugin did not load: " + "; ".join(lines))
        return self

    def stop(self) -> None:
        self._loop.run_until_complete(self.supervisor.stop())
        self._loop.close()

    def __enter__(self) -> SandboxedPlugin:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- what the plugin contributes ------------------------------------------------------------------
    @property
    def contributions(self) -> dict[str, Any]:
        """Routes, event handlers, panels and config schema the plugin's code declared."""
        return self.supervisor.contributions

    @property
    def kv(self) -> dict[str, Any]:
        """The plugin's key-value store."""
        return self.backend.kv

    @property
    def published(self) -> list[dict[str, Any]]:
        """Events the plugin published: ``{"id", "topic", "payload", "subject_id"}``."""
        return self.backend.published

    # -- calling it -----------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None, role: str = "admin"
    ) -> Answer:
        """Call the plugin's route for ``method path`` (the part after ``/api/v1/x/<plugin>``)."""
        for route in self.contributions.get("routes", []):
            if route["methods"][0] != method.upper():
                continue
            params = _match(route["path"], path)
            if params is None:
                continue
            request = {"method": method.upper(), "path": route["path"], "params": params, "query": query or {},
                       "body": body, "principal": {"id": "test", "role": role}}  # fmt: skip
            return self._call("route", route["key"], request)
        return Answer(404, {"detail": f"the plugin serves no {method.upper()} {path}"}, "error")

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.request("POST", path, body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Answer:
        return self.request("PUT", path, body=body, **kwargs)

    def emit(self, topic: str, payload: dict[str, Any] | None = None, **envelope: Any) -> list[Answer]:
        """Deliver an event on ``topic`` to every handler whose pattern matches; one answer each."""
        event = {"id": envelope.pop("id", "00000000-0000-7000-8000-000000000000"), "topic": topic,
                 "type": ".".join(topic.split("/")[2:]), "source": envelope.pop("source", "tests"),
                 "payload": payload or {}, **envelope}  # fmt: skip
        event.setdefault("subject_id", None)
        event.setdefault("occurred_at", "2026-01-01T00:00:00Z")
        return [
            self._call("event", handler["key"], event)
            for handler in self.contributions.get("events", [])
            if topic_matches(handler["pattern"], topic)
        ]

    def _call(self, kind: str, key: str, args: dict[str, Any]) -> Answer:
        outcome = self._loop.run_until_complete(self.supervisor.call(kind, key, args))
        status = outcome.status_code if outcome.ok else (504 if (outcome.error or {}).get("type") == "Timeout" else 502)
        body = outcome.value if outcome.ok else {"error": outcome.error}
        return Answer(status, body, outcome.status, outcome.stdout, outcome.violations, outcome.error)


def _match(template: str, path: str) -> dict[str, str] | None:
    """Path parameters of ``path`` under the route template ``template``, or ``None``."""
    parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
    found = re.fullmatch(regex, path)
    return found.groupdict() if found else None


__all__ = ["Answer", "PluginLoadError", "SandboxedPlugin", "find_manifest"]
