"""Plugin discovery, ordering, isolation and per-hook timing around a pluggy ``PluginManager``.

Builtin plugins are listed in :data:`BUILTIN_PLUGINS` and registered exactly like third-party ones,
which come from the ``taylordash.plugins`` entry-point group. Order is deterministic: builtins in the
listed order, then entry points sorted by name. A plugin that fails to import, implements an unknown
hook, raises in a hook or returns the wrong type is disabled with a logged error; the app goes on.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy
import structlog
from prometheus_client import CollectorRegistry, Histogram

from kernel import __version__, hookspecs
from kernel.errors import PluginError

BUILTIN_PLUGINS: tuple[str, ...] = (
    "builtin_plugins.auth",
    "builtin_plugins.events",
    "builtin_plugins.plugins",
    "builtin_plugins.projects",
    "builtin_plugins.storage",
    "builtin_plugins.monitoring",
    "builtin_plugins.sandbox",
    "builtin_plugins.mcp",
    "builtin_plugins.dashboard",
)
ENTRY_POINT_GROUP = "taylordash.plugins"

log = structlog.get_logger("taylordash.plugins")
Check = Callable[[Any], str | None]


@dataclass
class PluginRecord:
    """What the kernel knows about one discovered plugin."""

    name: str
    module: str
    version: str
    builtin: bool
    obj: object | None
    hooks: list[str] = field(default_factory=list)
    enabled: bool = True
    error: str | None = None
    description: str = ""
    sandboxed: bool = False
    """A proxy for a plugin running in a sandbox worker, attached while the kernel runs."""

    @property
    def active(self) -> bool:
        return self.enabled and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "enabled": self.enabled,
            "active": self.active,
            "hooks": self.hooks,
            "error": self.error,
            "description": self.description,
            "sandboxed": self.sandboxed,
        }


def _describe(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class PluginHost:
    """Owns the ``PluginManager`` and every :class:`PluginRecord`, in plugin order."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        extra: Sequence[tuple[str, object]] = (),
        builtins: Sequence[str] = BUILTIN_PLUGINS,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.hook_seconds = Histogram(
            "taylordash_hook_call_duration_seconds",
            "Time spent in plugin hook calls",
            ["hook", "plugin"],
            registry=registry,
            buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self._started: list[float] = []
        self._whole_hook: dict[str, Any] = {}  # labelled children, cached: hooks like authenticate run per request
        self.pm.add_hookcall_monitoring(self._before_hook, self._after_hook)
        self._discover(builtins, extra)

    # -- discovery -------------------------------------------------------------------------------
    def _add(self, record: PluginRecord) -> None:
        if record.name in self.records:
            record.error = f"name clashes with the plugin from {self.records[record.name].module}"
            log.error("plugin.rejected", plugin=record.name, error=record.error)
            record.name = f"{record.name}@{record.module}"
        if record.obj is not None:
            record.hooks = self._hook_names(record.obj)
        self.records[record.name] = record

    def _discover(self, builtins: Sequence[str], extra: Sequence[tuple[str, object]]) -> None:
        for module_name in builtins:
            name = module_name.rsplit(".", 1)[-1]
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                self._add(PluginRecord(name, module_name, __version__, True, None, error=f"import failed: {exc!r}"))
                log.error("plugin.import_failed", plugin=name, error=repr(exc))
                continue
            self._add(PluginRecord(name, module_name, __version__, True, module, description=_describe(module)))
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            version = ep.dist.version if ep.dist is not None else "0"
            try:
                obj = ep.load()
            except Exception as exc:
                self._add(PluginRecord(ep.name, ep.value, version, False, None, error=f"import failed: {exc!r}"))
                log.error("plugin.import_failed", plugin=ep.name, error=repr(exc))
                continue
            self._add(PluginRecord(ep.name, ep.value, version, False, obj, description=_describe(obj)))
        for name, obj in extra:
            module = getattr(obj, "__name__", type(obj).__name__)
            self._add(
                PluginRecord(name, module, getattr(obj, "__version__", "0"), False, obj, description=_describe(obj))
            )

    def _hook_names(self, obj: object) -> list[str]:
        names = []
        for attr in dir(obj):
            if self.pm.parse_hookimpl_opts(obj, attr) is not None:
                names.append(attr)
        return sorted(names)

    # -- registration ----------------------------------------------------------------------------
    def register(self, disabled: Iterable[str] = ()) -> None:
        """Register every discovered plugin that is not disabled and loaded cleanly, in order."""
        disabled = set(disabled)
        known = {name for name in dir(self.pm.hook) if not name.startswith("_")}
        for record in self.records.values():
            record.enabled = record.name not in disabled
            if not record.active or record.obj is None:
                continue
            unknown = [h for h in record.hooks if h not in known]
            if unknown:
                self.fail(record.name, f"implements unknown hook(s) {unknown}; check the spelling")
                continue
            try:
                self.pm.register(record.obj, name=record.name)
            except Exception as exc:  # pluggy validates signatures against the specs
                self.fail(record.name, f"cannot be registered: {exc}")

    def add_runtime(self, name: str, obj: object, version: str, description: str = "") -> PluginRecord:
        """Register ``obj`` (a sandboxed plugin's proxy) while the kernel runs; it joins the plugin
        order last. Raises :class:`PluginError` when ``name`` is taken."""
        existing = self.records.get(name)
        if existing is not None and not existing.sandboxed:
            raise PluginError(f"plugin name {name!r} is taken by {existing.module}")
        self.remove_runtime(name)
        record = PluginRecord(name, f"sandbox:{name}", version, False, obj, description=description, sandboxed=True)
        record.hooks = self._hook_names(obj)
        self.pm.register(obj, name=name)
        self.records[name] = record
        return record

    def remove_runtime(self, name: str) -> None:
        """Unregister a plugin added with :meth:`add_runtime`."""
        record = self.records.get(name)
        if record is None or not record.sandboxed:
            return
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        del self.records[name]

    def fail(self, name: str, message: str) -> None:
        """Disable plugin ``name`` for this process because it misbehaved, logging why."""
        record = self.records[name]
        record.error = message
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        log.error("plugin.disabled_after_error", plugin=name, error=message)

    @property
    def active(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.active]

    # -- calling hooks ---------------------------------------------------------------------------
    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations in plugin order: ``tryfirst`` ones, then registration order, then ``trylast``."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        first = [i for i in reversed(impls) if i.tryfirst]
        last = [i for i in reversed(impls) if i.trylast]
        return first + [i for i in impls if not (i.tryfirst or i.trylast)] + last

    def collect(self, hook_name: str, check: Check, only: str | None = None, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook_name`` on each plugin (or only on plugin ``only``) separately; return
        ``[(plugin, result)]`` for results that pass ``check`` (which returns an error message or
        ``None``). Failing plugins are disabled."""
        results: list[tuple[str, Any]] = []
        for impl in self._impls(hook_name):
            name = impl.plugin_name
            if only is not None and name != only:
                continue
            start = time.perf_counter()
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                self.fail(name, f"hook {hook_name} raised {exc!r}")
                continue
            finally:
                self.hook_seconds.labels(hook_name, name).observe(time.perf_counter() - start)
            problem = check(result)
            if problem is not None:
                self.fail(name, f"hook {hook_name} returned {type(result).__name__}: {problem}")
                continue
            results.append((name, result))
        return results

    async def call_each(self, hook_name: str, *, isolate: bool, reverse: bool = False, **kwargs: Any) -> None:
        """Call a lifecycle hook on every plugin, awaiting coroutines. With ``isolate`` a raising plugin
        is disabled; otherwise the error is only logged (shutdown)."""
        impls = self._impls(hook_name)
        for impl in reversed(impls) if reverse else impls:
            name = impl.plugin_name
            start = time.perf_counter()
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                if isolate:
                    self.fail(name, f"hook {hook_name} raised {exc!r}")
                else:
                    log.exception("plugin.hook_failed", plugin=name, hook=hook_name)
            finally:
                self.hook_seconds.labels(hook_name, name).observe(time.perf_counter() - start)

    async def first_result(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a ``firstresult`` hook that runs per request (``authenticate``): implementations in
        pluggy's order, awaiting awaitables, until one returns something other than ``None``.

        Called directly rather than through pluggy, whose call monitoring would time only the
        synchronous part of an async implementation; the time observed here includes the await."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            result = getattr(self.pm.hook, hook_name)(**kwargs)
            return await result if inspect.isawaitable(result) else result
        start = time.perf_counter()
        try:
            for impl in reversed(impls):
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    return result
            return None
        finally:
            self._observe_whole(hook_name, time.perf_counter() - start)

    def _before_hook(self, hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        self._started.append(time.perf_counter())

    def _after_hook(
        self, outcome: Any, hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        self._observe_whole(hook_name, time.perf_counter() - self._started.pop())

    def _observe_whole(self, hook_name: str, seconds: float) -> None:
        """Record one whole call of ``hook_name`` (all implementations) under the plugin label ``*``."""
        child = self._whole_hook.get(hook_name)
        if child is None:
            child = self._whole_hook[hook_name] = self.hook_seconds.labels(hook_name, "*")
        child.observe(seconds)


# -- result checks used with PluginHost.collect --------------------------------------------------
def sequence_of(*types: type) -> Check:
    """A check accepting a list or tuple whose items are all instances of ``types``."""
    wanted = " | ".join(t.__name__ for t in types)

    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple):
            return f"expected a list of {wanted}"
        for item in value:
            if not isinstance(item, types):
                return f"expected a list of {wanted}, found an item of type {type(item).__name__}"
        return None

    return check


def mapping_of_roles(value: Any) -> str | None:
    """Check for ``register_permissions``: ``{str: [role, …]}``."""
    if not isinstance(value, Mapping):
        return "expected a mapping of permission name to roles"
    for key, roles in value.items():
        if not isinstance(key, str) or isinstance(roles, str) or not isinstance(roles, Iterable):
            return f"expected a mapping of permission name to a list of roles (bad entry {key!r})"
    return None


def optional_path(value: Any) -> str | None:
    """Check for ``register_migrations``: a folder path or ``None``."""
    import os

    if value is None or isinstance(value, str | os.PathLike):
        return None
    return "expected a path or None"


def model_class_or_none(value: Any) -> str | None:
    """Check for ``plugin_config_schema``: a pydantic model class or ``None``."""
    from pydantic import BaseModel

    if value is None or (isinstance(value, type) and issubclass(value, BaseModel)):
        return None
    return "expected a pydantic model class or None"


def anything(value: Any) -> str | None:
    """Check that accepts any result."""
    return None


__all__ = ["BUILTIN_PLUGINS", "PluginError", "PluginHost", "PluginRecord"]
