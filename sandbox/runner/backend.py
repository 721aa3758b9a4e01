"""What granted ``api`` calls do inside a running kernel, and the batched record of every call."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from kernel.bus.envelope import Event
from kernel.db import cancel_between_transactions
from kernel.security import Principal
from sandbox.runner.api import MAX_VALUE_BYTES, _check_key, event_type_for
from sandbox.runner.supervisor import ApiFailed

log = structlog.get_logger("taylordash.sandbox")


def plugin_principal(name: str) -> Principal:
    """Who a sandboxed plugin acts as when it writes through the api."""
    return Principal(id=f"plugin:{name}", role="plugin", name=name, kind="plugin")


class KernelBackend:
    """Granted ``api`` calls of one plugin, served by the kernel's services: projects through
    ``kernel.services["projects"]``, storage and configuration through the registry's."""

    def __init__(self, kernel: Any, name: str, plugin_id: uuid.UUID) -> None:
        self.kernel = kernel
        self.registry = kernel.services["plugins"]
        self.name = name
        self.plugin_id = plugin_id
        self.principal = plugin_principal(name)

    def _projects(self) -> Any:
        service = self.kernel.services.get("projects")
        if service is None:
            raise ApiFailed("the projects plugin is not running")
        return service

    async def _guard(self, coroutine: Any) -> Any:
        from kernel.errors import ProblemError

        try:
            return await coroutine
        except ValidationError as exc:
            raise ApiFailed(f"invalid arguments: {exc.errors(include_url=False)[:3]}") from None
        except ProblemError as exc:
            raise ApiFailed(f"{exc.title}: {exc.detail}") from None
        except ValueError as exc:
            raise ApiFailed(str(exc)) from None

    # -- projects and tasks ---------------------------------------------------------------------------
    async def projects_list(self, **filters: Any) -> Any:
        return await self._guard(self._projects().list_projects(**filters))

    async def projects_get(self, id: str) -> Any:
        return await self._guard(self._projects().get_project(id))

    async def projects_create(self, **data: Any) -> Any:
        return await self._guard(self._projects().create_project(data, self.principal))

    async def tasks_list(self, project_id: str, **filters: Any) -> Any:
        return await self._guard(self._projects().list_tasks(project_id, **filters))

    async def tasks_update(self, id: str, changes: dict[str, Any], version: int | None = None) -> Any:
        return await self._guard(self._projects().update_task(id, changes, self.principal, version))

    # -- events ---------------------------------------------------------------------------------------
    async def events_publish(
        self, topic: str, payload: dict[str, Any] | None = None, subject_id: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(payload, dict | None):
            raise ApiFailed("payload must be a JSON object")
        try:
            event = Event.create(
                type=event_type_for(topic), source=self.name[:100], subject_id=subject_id, payload=payload or {},
                actor={"id": self.principal.id, "role": "plugin"},
            )  # fmt: skip
        except ValidationError as exc:
            raise ApiFailed(f"invalid event: {exc.errors(include_url=False)[0]['msg']}") from None
        async with self.kernel.db.session() as session:
            await self.kernel.publish(session, event)
            await session.commit()
        return {"id": str(event.id), "topic": event.topic}

    # -- key-value store and configuration --------------------------------------------------------------
    async def kv_get(self, key: str, default: Any = None) -> Any:
        return await self.registry.kv_get(self.plugin_id, _check_key(key), default)

    async def kv_set(self, key: str, value: Any) -> None:
        if len(json.dumps(value)) > MAX_VALUE_BYTES:
            raise ApiFailed(f"a value takes at most {MAX_VALUE_BYTES} bytes of JSON")
        await self.registry.kv_set(self.plugin_id, _check_key(key), value)

    async def kv_delete(self, key: str) -> bool:
        return await self.registry.kv_delete(self.plugin_id, _check_key(key))

    async def kv_keys(self, prefix: str = "") -> list[str]:
        return await self.registry.kv_keys(self.plugin_id, str(prefix))

    async def config_get(self) -> dict[str, Any]:
        return await self.registry.config_of(self.plugin_id)


@dataclass
class _Tally:
    calls: int = 0
    refused: int = 0
    failed: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0
    last_outcome: str = ""
    last_method: str = ""


class AccessRecorder:
    """Tallies ``api`` calls in memory and hands them to the registry (``add_api_calls``) every
    ``interval`` seconds and on :meth:`flush`, so a busy plugin costs one write a second."""

    def __init__(self, kernel: Any, interval: float = 1.0) -> None:
        self.kernel = kernel
        self.interval = interval
        self.pending: dict[tuple[uuid.UUID, str], _Tally] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def recorder_for(self, plugin_id: uuid.UUID) -> Callable[[str, str, str, float], None]:
        def record(method: str, permission: str, outcome: str, duration_ms: float) -> None:
            tally = self.pending.setdefault((plugin_id, permission[:300]), _Tally())
            tally.calls += 1
            tally.refused += outcome == "refused"
            tally.failed += outcome == "failed"
            tally.total_ms += duration_ms
            tally.max_ms = max(tally.max_ms, duration_ms)
            tally.last_outcome, tally.last_method = outcome, method[:100]
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._flush_later())

        return record

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self.pending = self.pending, {}
            registry = self.kernel.services.get("plugins")
            if not batch or registry is None:
                return
            try:
                await registry.add_api_calls({key: asdict(tally) for key, tally in batch.items()})
            except Exception:
                log.exception("sandbox.access_flush_failed", entries=len(batch))

    async def close(self) -> None:
        """Stop the delayed flush (never inside its transaction) and write what is pending."""
        if self._task is not None:
            await cancel_between_transactions(self._lock, [self._task])
        await self.flush()
