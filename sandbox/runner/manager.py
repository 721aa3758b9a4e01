"""Enabled registry plugins as pluggy proxies in a running kernel (``kernel.services["sandbox"]``).

For each plugin the registry has enabled, the manager unpacks the stored package (once per package
hash), starts a :class:`~sandbox.runner.supervisor.Supervisor`, and attaches a :class:`SandboxProxy`
to the kernel. The proxy implements the ordinary hooks: its routes live under
``/api/v1/x/<plugin>/…`` and its event handlers join everyone else's. (A plugin's dashboard panels
are static files of its package, which the dashboard serves and frames itself; no file of a
package is served from the host's origin.) Every violation is
stored through the registry (which publishes ``tracker/events/plugins/violation`` and quarantines
after repeated ones) and counted in ``taylordash_sandbox_violations_total``; a quarantined plugin's
worker is stopped and its proxy detached.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import RootModel
from starlette.responses import Response

from kernel.contributions import EventHandler
from kernel.errors import ProblemError, ServiceUnavailable
from kernel.routing import RequestContext, Route, parse_body
from sandbox.runner.api import PluginApi
from sandbox.runner.backend import AccessRecorder, KernelBackend
from sandbox.runner.limits import Limits
from sandbox.runner.supervisor import CallOutcome, Supervisor, WorkerSpec, WorkerUnavailable
from sdk import hookimpl
from sdk.manifest import MANIFEST_FILE, PluginManifest, permission_granted, topic_matches

log = structlog.get_logger("taylordash.sandbox")
PREFIX = "/api/v1/x"


class PluginFailed(ProblemError):
    status, slug, title = 502, "plugin-failed", "Plugin Failed"


class PluginTimeout(ProblemError):
    status, slug, title = 504, "plugin-timeout", "Plugin Timed Out"


class AnyJson(RootModel[Any]):
    """Any JSON body."""


@dataclass
class Metrics:
    violations: Counter
    restarts: Gauge
    workers: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None, manager: SandboxManager) -> Metrics:
        metrics = cls(
            Counter(
                "taylordash_sandbox_violations",
                "Refused actions and limit hits of sandboxed plugins",
                ["plugin", "kind"],
                registry=registry,
            ),
            Gauge(
                "taylordash_sandbox_worker_restarts", "Restarts of each sandbox worker", ["plugin"], registry=registry
            ),
            Gauge("taylordash_sandbox_workers", "Sandbox worker subprocesses by state", ["state"], registry=registry),
        )
        metrics.workers.labels("ready").set_function(lambda: manager.count(running=True))
        metrics.workers.labels("restarting").set_function(lambda: manager.count(running=False))
        return metrics


def route_permissions(name: str) -> tuple[str, str]:
    """The permissions guarding a sandboxed plugin's routes: reading (GET) and changing."""
    return f"x.{name}:read", f"x.{name}:write"


class SandboxProxy:
    """One sandboxed plugin as the kernel sees it: a pluggy plugin whose hooks call the worker."""

    def __init__(
        self, manager: SandboxManager, name: str, manifest: PluginManifest, supervisor: Supervisor, root: Path
    ) -> None:
        self.manager, self.name, self.manifest, self.supervisor, self.root = manager, name, manifest, supervisor, root
        self.__doc__ = manifest.description

    # -- hooks --------------------------------------------------------------------------------------
    @hookimpl
    def register_permissions(self) -> dict[str, list[str]]:
        read, write = route_permissions(self.name)
        return {read: ["admin", "viewer"], write: ["admin"]}

    @hookimpl
    def register_routes(self, kernel: Any) -> list[Route]:
        routes: list[Route] = []
        if permission_granted(self.manifest.permissions, "http:route"):
            declared = {(m, r.path) for r in self.manifest.contributions.routes for m in r.methods}
            for item in self.supervisor.contributions.get("routes", []):
                method, path = item["methods"][0], item["path"]
                if (method, path) not in declared:
                    self.manager.note(self.name, "permission", f"route {method} {path} is not declared in the manifest")
                    continue
                routes.append(self._route(kernel, item["key"], method, path, item.get("summary", "")))
        elif self.supervisor.contributions.get("routes"):
            self.manager.note(self.name, "permission", "the plugin serves routes without the http:route permission")
        return routes

    @hookimpl
    def register_event_handlers(self, kernel: Any) -> list[EventHandler]:
        handlers = []
        declared = self.manifest.contributions.event_subscriptions
        for item in self.supervisor.contributions.get("events", []):
            pattern = item["pattern"]
            allowed = pattern in declared or any(topic_matches(d, pattern) for d in declared)
            if not (allowed or permission_granted(self.manifest.permissions, f"events:subscribe:{pattern}")):
                self.manager.note(self.name, "permission", f"subscription to {pattern!r} is not declared")
                continue
            handlers.append(EventHandler(pattern, self._event_handler(item["key"]), name=f"sandbox:{item['key']}"))
        return handlers

    # -- helpers ------------------------------------------------------------------------------------
    def check_panels(self) -> None:
        """Record a violation for each panel the code declares that the manifest does not (the
        dashboard frames the manifest's panels only, from the package's ``panels/<id>/``)."""
        from_code = self.supervisor.contributions.get("panels", [])
        if from_code and not permission_granted(self.manifest.permissions, "dashboard:panel"):
            self.manager.note(
                self.name, "permission", "the plugin declares panels without the dashboard:panel permission"
            )
            return
        declared = {p.id for p in self.manifest.contributions.panels}
        for item in from_code:
            if item["id"] not in declared:
                self.manager.note(self.name, "permission", f"panel {item['id']!r} is not declared in the manifest")

    def _route(self, kernel: Any, key: str, method: str, path: str, summary: str) -> Route:
        read, write = route_permissions(self.name)
        supervisor, limit = self.supervisor, kernel.settings.max_body_bytes
        mutating = method != "GET"

        async def endpoint(ctx: RequestContext) -> Response:
            body = None
            if mutating and ctx.request.headers.get("content-length", "0") != "0":
                body = (await parse_body(ctx.request, AnyJson, limit)).root  # type: ignore[attr-defined]
            principal = ctx.principal
            request = {
                "method": method,
                "path": path,
                "params": {k: str(v) for k, v in ctx.path_params.items()},
                "query": dict(ctx.request.query_params),
                "body": body,
                "principal": {"id": principal.id, "role": principal.role} if principal else None,
            }
            outcome = await self.manager.call(supervisor, "route", key, request)
            return _response(outcome)

        return Route(
            f"{PREFIX}/{self.name}{path}",
            endpoint,
            methods=(method,),
            permission=write if mutating else read,
            summary=summary or f"{self.name}: {method} {path}",
            tags=(f"x/{self.name}",),
            problems={502: "The plugin failed", 503: "The plugin's worker is restarting", 504: "The plugin timed out"},
            name=f"x_{self.name}_{re.sub(r'[^a-z0-9]+', '_', (method + path).lower())}",
        )

    def _event_handler(self, key: str) -> Any:
        async def handle(event: Any) -> None:
            import json

            outcome = await self.manager.call(self.supervisor, "event", key, json.loads(event.to_json()))
            if not outcome.ok:
                error = outcome.error or {}
                raise RuntimeError(f"sandboxed handler failed: {error.get('type')}: {error.get('message')}")

        return handle


def _response(outcome: CallOutcome) -> Response:
    import json

    if outcome.ok:
        status = outcome.status_code if 200 <= outcome.status_code <= 599 else 200
        if status == 204:
            return Response(status_code=204)
        return Response(json.dumps(outcome.value), status_code=status, media_type="application/json")
    error = outcome.error or {}
    kinds = sorted({v["kind"] for v in outcome.violations})
    if error.get("type") == "Timeout":
        raise PluginTimeout("the plugin did not answer in time", violations=kinds)
    raise PluginFailed(
        f"the plugin failed ({outcome.status}): {error.get('type')}: {str(error.get('message'))[:300]}",
        outcome=outcome.status,
        violations=kinds,
    )


class SandboxManager:
    """Starts, stops and follows the sandboxed plugins of one kernel process."""

    def __init__(self, kernel: Any, limits: Limits, *, flush_seconds: float = 1.0, backoff_cap: float = 30.0) -> None:
        self.kernel = kernel
        self.limits = limits
        self.backoff_cap = backoff_cap
        self.proxies: dict[str, SandboxProxy] = {}
        self.access = AccessRecorder(kernel, flush_seconds)
        self.metrics: Metrics | None = None
        self._notes: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self.run_dir = Path(kernel.settings.data_dir) / "plugins" / "run"

    @property
    def registry(self) -> Any:
        return self.kernel.services["plugins"]

    # -- following the registry -----------------------------------------------------------------------
    async def start_enabled(self) -> None:
        """Start every plugin the registry has enabled (at kernel start-up)."""
        if "plugins" not in self.kernel.services:
            return
        for row in await self.registry.rows():
            if row.status == "enabled":
                await self.follow(row)

    async def follow(self, row: Any) -> None:
        """Bring the worker of ``row`` in line with its status: enabled runs, anything else stops.
        A kernel started for a one-off command (not serving) runs no workers."""
        if not getattr(self.kernel, "serving", True):
            return
        async with self._lock:
            if row.status == "enabled" and row.name not in self.proxies:
                try:
                    await self._start(row)
                except Exception as exc:
                    log.error("sandbox.start_failed", plugin=row.name, error=repr(exc))
                    await self._violations(row.name, [{"kind": "crash", "detail": f"cannot start: {exc}"}], {})
            elif row.status != "enabled" and row.name in self.proxies:
                await self._stop(row.name)

    async def _start(self, row: Any) -> None:
        root = await asyncio.to_thread(self._unpack, row)
        manifest = PluginManifest.load(self._manifest_path(root, row.manifest["entry"]))
        backend = KernelBackend(self.kernel, row.name, row.id)
        api = PluginApi(row.name, manifest.permissions, backend, self.access.recorder_for(row.id))
        spec = WorkerSpec(row.name, root=root, entry=manifest.entry, limits=self.limits)
        supervisor = Supervisor(spec, api, self._violations, backoff_cap=self.backoff_cap)
        await supervisor.start()
        proxy = SandboxProxy(self, row.name, manifest, supervisor, root)
        proxy.check_panels()
        try:
            self.kernel.attach_plugin(row.name, proxy, version=row.version, description=manifest.description)
        except Exception:
            await supervisor.stop()
            raise
        self.proxies[row.name] = proxy
        self._gauge()

    async def _stop(self, name: str) -> None:
        proxy = self.proxies.pop(name, None)
        if proxy is None:
            return
        with contextlib.suppress(Exception):
            self.kernel.detach_plugin(name)
        await proxy.supervisor.stop()
        self._gauge()
        log.info("sandbox.stopped", plugin=name)

    async def close(self) -> None:
        """Stop every worker at once (shutdown must stay short) and write the last api tallies."""
        if self._notes:  # a quarantine's stop or a violation being stored: let them finish
            await asyncio.wait(list(self._notes), timeout=10)
        for task in list(self._notes):
            task.cancel()
        results = await asyncio.gather(*(self._stop(name) for name in list(self.proxies)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("sandbox.stop_failed", error=repr(result))
        await self.access.close()

    def _gauge(self) -> None:
        if self.metrics is not None:
            for name, proxy in self.proxies.items():
                self.metrics.restarts.labels(name).set(proxy.supervisor.restarts)

    def count(self, running: bool) -> int:
        """Workers running (or not: waiting for a restart)."""
        return sum(1 for p in self.proxies.values() if p.supervisor.running == running)

    # -- packages -------------------------------------------------------------------------------------
    def _unpack(self, row: Any) -> Path:
        from sandbox.scanner.archive import target_kind, unpack

        target = self.run_dir / f"{row.name}-{row.package_sha256[:16]}"
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            archive = self.registry.store.absolute(row.package_path)
            kind = target_kind(archive)
            target.mkdir(parents=True, mode=0o700)
            unpack(archive, kind, target / "package")
            (target / ".complete").write_text(hashlib.sha256(archive.read_bytes()).hexdigest())
        return self._package_root(target / "package", row.manifest["entry"])

    @staticmethod
    def _package_root(folder: Path, entry: str) -> Path:
        top = entry.split(".")[0]
        for manifest in sorted(folder.rglob(MANIFEST_FILE), key=lambda p: len(p.parts)):
            if manifest.parent.name == top and (manifest.parent / "__init__.py").is_file():
                return manifest.parent.parent
        for init in sorted(folder.rglob(f"{top}/__init__.py"), key=lambda p: len(p.parts)):
            return init.parent.parent
        raise FileNotFoundError(f"the package has no {top}/__init__.py")

    @staticmethod
    def _manifest_path(root: Path, entry: str) -> Path:
        return root / entry.split(".")[0] / MANIFEST_FILE

    # -- calls and violations -------------------------------------------------------------------------
    async def call(self, supervisor: Supervisor, kind: str, key: str, args: dict[str, Any]) -> CallOutcome:
        if not supervisor.running and not await supervisor.wait_running(min(5.0, self.limits.call_timeout)):
            raise ServiceUnavailable(f"plugin {supervisor.name!r} is restarting; try again shortly")
        try:
            return await supervisor.call(kind, key, args)
        except WorkerUnavailable as exc:
            raise ServiceUnavailable(str(exc)) from None

    def note(self, name: str, kind: str, detail: str) -> None:
        """Record a violation found outside a call (e.g. an undeclared route), in the background."""
        task = asyncio.get_running_loop().create_task(self._violations(name, [{"kind": kind, "detail": detail}], {}))
        self._notes.append(task)
        task.add_done_callback(self._notes.remove)

    async def _violations(self, name: str, violations: list[dict[str, str]], context: dict[str, Any]) -> None:
        """Count, log and store violations; the registry quarantines (and calls :meth:`stop_soon`)."""
        for violation in violations:
            if self.metrics is not None:
                self.metrics.violations.labels(name, violation["kind"]).inc()
            log.warning("sandbox.violation", plugin=name, kind=violation["kind"], detail=violation["detail"][:200])
            try:
                await self.registry.record_violation(name, violation["kind"], violation["detail"], context)
            except Exception as exc:
                log.error("sandbox.violation_not_stored", plugin=name, error=repr(exc))
        self._gauge()

    def stop_soon(self, name: str) -> None:
        """Stop the worker of ``name`` in the background (it was quarantined)."""
        if name not in self.proxies:
            return
        log.warning("sandbox.quarantined", plugin=name)
        task = asyncio.get_running_loop().create_task(self._stop_locked(name))
        self._notes.append(task)
        task.add_done_callback(self._notes.remove)

    async def _stop_locked(self, name: str) -> None:
        async with self._lock:
            await self._stop(name)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "pid": proxy.supervisor.pid,
                "running": proxy.supervisor.running,
                "restarts": proxy.supervisor.restarts,
                "cold_start_ms": round(proxy.supervisor.cold_start_ms, 1),
                "limits": proxy.supervisor.applied_limits,
                "load_error": proxy.supervisor.load_error,
            }
            for name, proxy in self.proxies.items()
        ]
