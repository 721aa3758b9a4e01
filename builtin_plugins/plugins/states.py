"""Which uploaded plugins this instance treats as enabled, kept in step across instances by the bus.

The database is the authority. Each instance caches the set of enabled uploaded plugins (what the
sandbox runner asks before running one); after a lifecycle change commits, the instance that made it
broadcasts ``tracker/broadcast/plugins/changed`` and every instance of the deployment drops its cache
and tells its listeners, which reload from the database. The message carries only the plugin's name:
a foreign or replayed message costs one reload, nothing more. The cache also expires after
``state_cache_seconds``, so an instance that missed a broadcast (broker unreachable) catches up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

TOPIC = "tracker/broadcast/plugins/changed"
BROADCAST_WAIT_SECONDS = 2.0
Listener = Callable[[str], Awaitable[None]]
log = structlog.get_logger("taylordash.plugins")


class PluginStates:
    """This instance's view of the enabled uploaded plugins, and the broadcast that refreshes it."""

    def __init__(self, load: Callable[[], Awaitable[set[str]]], cache_seconds: float) -> None:
        self._load = load
        self.cache_seconds = cache_seconds
        self.instance = uuid.uuid4().hex
        self._cached: frozenset[str] | None = None
        self._expires = 0.0
        self._generation = 0
        self._listeners: list[Listener] = []
        self._bus: Any = None

    def connect(self, bus: Any) -> bool:
        """Listen for changes made on other instances (``False``: the kernel has no bus)."""
        if bus is None or not hasattr(bus, "on_broadcast") or not hasattr(bus, "broadcast"):
            return False
        bus.on_broadcast(TOPIC, self.receive)
        self._bus = bus
        return True

    def watch(self, listener: Listener) -> None:
        """Call ``await listener(name)`` on this instance whenever plugin ``name`` changed on any instance."""
        self._listeners.append(listener)

    async def enabled(self) -> frozenset[str]:
        """Names of the uploaded plugins that are enabled, from the cache while it is fresh."""
        loop = asyncio.get_running_loop()
        if self._cached is not None and loop.time() < self._expires:
            return self._cached
        generation = self._generation
        names = frozenset(await self._load())
        if generation == self._generation:  # no change arrived while loading
            self._cached, self._expires = names, loop.time() + self.cache_seconds
        return names

    async def announce(self, name: str) -> None:
        """Apply a committed change of ``name`` here, then tell every other instance."""
        await self._changed(name)
        if self._bus is None or not getattr(self._bus, "running", False):
            return
        try:
            await self._bus.broadcast(TOPIC, {"name": name, "from": self.instance}, BROADCAST_WAIT_SECONDS)
        except Exception as exc:  # the others catch up when their cache expires
            log.warning("plugins.broadcast_failed", plugin=name, error=repr(exc))

    async def receive(self, topic: str, payload: dict[str, Any]) -> None:
        """Handle a broadcast from any instance (this one's own is skipped: it applied it already)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
            return
        if payload.get("from") == self.instance:
            return
        await self._changed(payload["name"][:200])

    async def _changed(self, name: str) -> None:
        self._generation += 1
        self._cached = None
        for listener in list(self._listeners):
            try:
                await listener(name)
            except Exception:
                log.exception("plugins.listener_failed", plugin=name)
