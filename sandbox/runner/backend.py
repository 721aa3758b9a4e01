"""What granted ``api`` calls do inside a running kernel, and the batched record of every call."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError
from sqlmodel import select

from builtin_plugins.plugins.models import PluginApiAccess, PluginConfiguration, PluginKV, utcnow
from kernel.bus.envelope import Event
from kernel.security import Principal
from sandbox.runner.api import MAX_VALUE_BYTES, _check_key, event_type_for
from sandbox.runner.supervisor import ApiFailed

log = structlog.get_logger("taylordash.sandbox")


def plugin_principal(name: str) -> Principal:
    """Who a sandboxed plugin acts as when it writes through the api."""
    return Principal(id=f"plugin:{name}", role="plugin", name=name, kind="plugin")


class KernelBackend:
    """Granted ``api`` calls of one plugin, served by the kernel's services and database."""

    def __init__(self, kernel: Any, name: str, plugin_id: uuid.UUID) -> None:
        self.kernel = kernel
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
        from builtin_plugins.projects.schemas import ProjectCreate
        from builtin_plugins.projects.service import as_row

        async def create() -> Any:
            body = ProjectCreate.model_validate(data)
            return await self._projects().service.create_project(as_row(body.model_dump()), self.principal)

        return await self._guard(create())

    async def tasks_list(self, project_id: str, **filters: Any) -> Any:
        from builtin_plugins.projects.schemas import TaskQuery

        async def page() -> Any:
            query = TaskQuery.model_validate(filters)
            scope = ("project_id", "projects", uuid.UUID(str(project_id)))
            return json.loads(await self._projects().reader.page("tasks", query, scope))

        return await self._guard(page())

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

    # -- key-value store ------------------------------------------------------------------------------
    async def kv_get(self, key: str, default: Any = None) -> Any:
        async with self.kernel.db.session() as session:
            row = await session.get(PluginKV, (self.plugin_id, _check_key(key)))
            return default if row is None else row.value

    async def kv_set(self, key: str, value: Any) -> None:
        if len(json.dumps(value)) > MAX_VALUE_BYTES:
            raise ApiFailed(f"a value takes at most {MAX_VALUE_BYTES} bytes of JSON")
        async with self.kernel.db.session() as session:
            row = await session.get(PluginKV, (self.plugin_id, _check_key(key)))
            if row is None:
                row = PluginKV(plugin_id=self.plugin_id, key=key, value=value)
            row.value, row.updated_at = value, utcnow()
            session.add(row)
            await session.commit()

    async def kv_delete(self, key: str) -> bool:
        async with self.kernel.db.session() as session:
            row = await session.get(PluginKV, (self.plugin_id, _check_key(key)))
            if row is None:
                return False
            await session.delete(row)
            await session.commit()
            return True

    async def kv_keys(self, prefix: str = "") -> list[str]:
        async with self.kernel.db.session() as session:
            query = select(PluginKV.key).where(PluginKV.plugin_id == self.plugin_id).order_by(PluginKV.key)
            return [k for k in (await session.exec(query)).all() if k.startswith(prefix)]

    # -- configuration --------------------------------------------------------------------------------
    async def config_get(self) -> dict[str, Any]:
        async with self.kernel.db.session() as session:
            query = select(PluginConfiguration).where(PluginConfiguration.plugin_id == self.plugin_id)
            row = (await session.exec(query)).first()
            return dict(row.config) if row is not None else {}


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
    """Tallies ``api`` calls in memory and adds them to ``plugin_api_access`` in one transaction
    every ``interval`` seconds (and on :meth:`flush`), so a busy plugin costs one write a second."""

    def __init__(self, db: Any, interval: float = 1.0) -> None:
        self.db = db
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
            if not batch:
                return
            try:
                async with self.db.session() as session:
                    for (plugin_id, permission), tally in batch.items():
                        query = select(PluginApiAccess).where(
                            PluginApiAccess.plugin_id == plugin_id, PluginApiAccess.permission == permission
                        )
                        row = (await session.exec(query)).first()
                        if row is None:
                            row = PluginApiAccess(plugin_id=plugin_id, permission=permission, granted=False)
                        row.calls += tally.calls
                        row.refused += tally.refused
                        row.failed += tally.failed
                        row.total_ms += tally.total_ms
                        row.max_ms = max(row.max_ms, tally.max_ms)
                        row.last_outcome, row.last_method = tally.last_outcome, tally.last_method
                        row.last_called_at = row.updated_at = utcnow()
                        session.add(row)
                    await session.commit()
            except Exception:
                log.exception("sandbox.access_flush_failed", entries=len(batch))

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
