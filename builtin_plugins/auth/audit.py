"""The audit log: who did what, when, from where, and how it ended."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
import uuid_utils.compat as uuid_utils
from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import Scope

from builtin_plugins.auth import pagination
from builtin_plugins.auth.models import AuditEntry, utcnow
from kernel.db import Database, cancel_between_transactions
from sdk import Principal

log = structlog.get_logger("taylordash.auth")
#: Entries held while the database refuses them; beyond this the oldest are dropped (and logged).
MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a user, an API token, the command line, or nobody known."""

    kind: str
    id: str | None = None
    name: str | None = None
    role: str | None = None

    @classmethod
    def of(cls, principal: Principal | None) -> Actor:
        if principal is None:
            return ANONYMOUS
        return cls(principal.kind, principal.id, principal.name, principal.role)


ANONYMOUS = Actor("anonymous")


@dataclass(slots=True)
class Origin:
    """Where a request came from."""

    ip: str | None = None
    user_agent: str | None = None
    method: str | None = None
    path: str | None = None
    request_id: str | None = None


@dataclass(slots=True)
class AuditNote:
    """What an endpoint tells the audit middleware about the request it is serving."""

    action: str
    target_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: Actor | None = None


def outcome_of(status: int) -> str:
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    if status == 429:
        return "throttled"
    return "failure" if status < 500 else "error"


def decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=pagination.decode(cursor, 1)[0])
    except ValueError:
        raise pagination.invalid_cursor() from None


def clean(value: Any) -> Any:
    """``value`` with what PostgreSQL text and JSONB refuse (NUL, lone surrogates) replaced, recursively."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()
    if isinstance(value, dict):
        return {clean(str(k)): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _clip(value: str | None, length: int) -> str | None:
    return clean(value[:length]) if value is not None else None


class AuditLog:
    """Writes and reads ``auth_audit_log``.

    :meth:`record` writes at once (in the caller's session or a transaction of its own).
    :meth:`defer` queues an entry for the background writer started by :meth:`start`, which inserts
    what has queued up in one statement every ``linger_seconds``: the request audit trail costs a
    share of one insert instead of a transaction per request. Reads (:meth:`search`) and
    :meth:`stop` flush the queue first, so an instance always reads its own entries."""

    def __init__(self, db: Database, linger_seconds: float = 0.05) -> None:
        self.db = db
        self.linger_seconds = linger_seconds
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._table = AuditEntry.__table__  # type: ignore[attr-defined]

    def entry(
        self,
        action: str,
        outcome: str,
        actor: Actor,
        origin: Origin | None = None,
        *,
        status: int | None = None,
        target_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            **self.values(action, outcome, actor, origin, status=status, target_id=target_id, details=details)
        )

    @staticmethod
    def values(
        action: str,
        outcome: str,
        actor: Actor,
        origin: Origin | None = None,
        *,
        status: int | None = None,
        target_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The column values of an entry (what :meth:`entry` builds a row object from)."""
        origin = origin or Origin()
        return {
            "id": uuid_utils.uuid7(),
            "occurred_at": utcnow(),
            "actor_id": _clip(actor.id, 64),
            "actor_name": _clip(actor.name, 150),
            "actor_kind": actor.kind,
            "actor_role": actor.role,
            "action": action[:100],
            "outcome": outcome,
            "status": status,
            "method": _clip(origin.method, 10),
            "path": _clip(origin.path, 500),
            "ip": _clip(origin.ip, 64),
            "user_agent": _clip(origin.user_agent, 300),
            "request_id": _clip(origin.request_id, 128),
            "target_id": _clip(target_id, 64),
            "details": clean(details or {}),
        }

    def for_request(self, scope: Scope, status: int) -> AuditEntry:
        """The entry for an HTTP request: the endpoint's :class:`AuditNote` if it left one (else a
        generic ``http.request``), the principal who made it, where it came from, and ``status``."""
        return AuditEntry(**self.request_values(scope, status))

    def request_values(self, scope: Scope, status: int) -> dict[str, Any]:
        """The column values of :meth:`for_request`'s entry."""
        state = scope.get("state") or {}
        audit_note: AuditNote = state.get("audit") or AuditNote("http.request")
        user_agent = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
                break
        client = scope.get("client")
        origin = Origin(
            client[0] if client else None, user_agent, scope["method"], scope["path"], state.get("request_id")
        )
        actor = audit_note.actor or Actor.of(state.get("principal") or state.get("authenticated"))
        return self.values(
            audit_note.action,
            outcome_of(status),
            actor,
            origin,
            status=status,
            target_id=audit_note.target_id,
            details=audit_note.details,
        )

    async def record(self, entry: AuditEntry, session: AsyncSession | None = None) -> None:
        """Store ``entry`` in ``session`` (committed by its owner) or in a transaction of its own."""
        if session is not None:
            session.add(entry)
            return
        async with self.db.session() as own:
            own.add(entry)
            await own.commit()

    async def defer(self, values: dict[str, Any]) -> None:
        """Queue an entry (its column :meth:`values`) for the background writer; without a running
        writer, store it now."""
        if self._writer is None or self._writer.done():
            await self.record(AuditEntry(**values))
            return
        self._pending.append(values)
        if len(self._pending) > MAX_PENDING:
            dropped = len(self._pending) - MAX_PENDING
            del self._pending[:dropped]
            log.error("auth.audit_dropped", entries=dropped, reason="the database refused audit writes too long")
        self._wake.set()

    def start(self) -> None:
        """Start the background writer (on the running event loop)."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_forever(), name="audit-writer")

    async def stop(self) -> None:
        """Stop the writer (never inside its transaction) and store what it still holds."""
        if self._writer is not None:
            await cancel_between_transactions(self._flushing, [self._writer])
            self._writer = None
        try:
            await self.flush()
        except Exception as exc:
            log.error("auth.audit_write_failed", error=repr(exc), entries=len(self._pending))

    async def flush(self) -> None:
        """Insert every queued entry now (raises if the database refuses; the entries stay queued)."""
        async with self._flushing:
            if not self._pending:
                return
            rows, self._pending = self._pending, []
            try:
                async with self.db.engine.begin() as conn:
                    await conn.execute(insert(self._table), rows)
            except BaseException:
                self._pending[:0] = rows
                raise

    async def _write_forever(self) -> None:
        delay = self.linger_seconds
        while True:
            await self._wake.wait()
            await asyncio.sleep(delay)  # let a burst of requests queue up behind the first
            self._wake.clear()
            try:
                await self.flush()
                delay = self.linger_seconds
            except Exception as exc:
                log.error("auth.audit_write_failed", error=repr(exc), entries=len(self._pending))
                delay = min(max(delay * 2, 0.5), 5.0)
                self._wake.set()

    async def search(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        target_id: str | None = None,
        ip: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        """Entries newest first matching every given filter, and the cursor of the next page."""
        query = select(AuditEntry)
        for column, value in (
            (AuditEntry.actor_id, actor_id),
            (AuditEntry.action, action),
            (AuditEntry.outcome, outcome),
            (AuditEntry.target_id, target_id),
            (AuditEntry.ip, ip),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(col(AuditEntry.occurred_at) >= since)
        if until is not None:
            query = query.where(col(AuditEntry.occurred_at) < until)
        if cursor is not None:
            query = query.where(col(AuditEntry.id) < decode_cursor(cursor))
        query = query.order_by(col(AuditEntry.id).desc()).limit(limit + 1)
        await self.flush()
        async with self.db.session() as session:
            rows = list((await session.exec(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, pagination.encode([rows[-1].id.hex]) if more and rows else None
