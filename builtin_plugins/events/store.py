"""The event store the kernel's processor writes through: mirror rows, handling claims, dead letters."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from uuid_utils.compat import uuid7

from builtin_plugins.events.models import DeadLetterEntry, EventClaim, MirroredEvent
from kernel.bus.sql import any_of
from sdk import Actor, Event

MIRROR = MirroredEvent.__table__
DLQ = DeadLetterEntry.__table__
CLAIMS = EventClaim.__table__


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def to_event(row: Mapping[str, Any]) -> Event:
    """The envelope of a mirror row."""
    actor = Actor(id=row["actor_id"], role=row["actor_role"]) if row["actor_id"] else None
    return Event(
        id=row["id"],
        type=row["type"],
        topic=row["topic"],
        source=row["source"],
        occurred_at=aware(row["occurred_at"]),
        actor=actor,
        trace_id=row["trace_id"],
        subject_id=row["subject_id"],
        schema_version=row["schema_version"],
        payload=row["payload"],
    )


# PostgreSQL: the whole batch as one statement over arrays, whatever its size (planned once).
PG_MIRROR = """
INSERT INTO events_mirror (id, type, topic, source, subject_id, actor_id, actor_role, trace_id,
                           schema_version, occurred_at, payload, mirrored_at)
SELECT b.*, $12::timestamptz
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::int[], $10::timestamptz[], $11::jsonb[])
     AS b(id, type, topic, source, subject_id, actor_id, actor_role, trace_id, schema_version,
          occurred_at, payload)
ON CONFLICT (id) DO NOTHING
RETURNING id
"""
PG_CLAIM = """
INSERT INTO event_claims (event_id, owner, expires_at)
SELECT unnest($1::uuid[]), $2::text, $3::timestamptz
"""


def _mirror_row(event: Event, now: datetime) -> dict[str, Any]:
    actor = event.actor
    return {
        "id": event.id,
        "type": event.type,
        "topic": event.topic,
        "source": event.source,
        "subject_id": event.subject_id,
        "actor_id": actor.id if actor else None,
        "actor_role": actor.role if actor else None,
        "trace_id": event.trace_id,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at,
        "payload": event.payload,
        "mirrored_at": now,
    }


class MirrorStore:
    """Implements the kernel's ``EventStore`` on ``events_mirror``, ``event_claims`` and ``dlq_events``."""

    def __init__(self, db: Any, on_mirrored: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.on_mirrored = on_mirrored
        self.mirrored: Any = None  # prometheus counters, bound by register_metrics
        self.duplicates: Any = None
        self._insert = sqlite.insert(MIRROR).on_conflict_do_nothing(index_elements=[MIRROR.c.id]).returning(MIRROR.c.id)
        self._complete = sa.delete(CLAIMS).where(any_of(CLAIMS.c.event_id, "ids", sa.Uuid(), db.is_sqlite))

    def bind_metrics(self, mirrored: Any, duplicates: Any) -> None:
        """Count mirrored events and duplicate deliveries on these prometheus counters."""
        self.mirrored, self.duplicates = mirrored, duplicates

    async def accept(
        self, conn: AsyncConnection, events: Sequence[tuple[Event, bool]], *, owner: str, lease_seconds: float
    ) -> list[Event]:
        """See ``kernel.bus.store.EventStore.accept``: one statement for the batch, claims for the handled."""
        now = utcnow()
        if self.db.is_sqlite:
            rows = [_mirror_row(event, now) for event, _ in events]
            inserted = set((await conn.execute(self._insert, rows)).scalars())
        else:
            columns: list[list[Any]] = [[] for _ in range(11)]
            for event, _ in events:
                row = _mirror_row(event, now)
                row["payload"] = to_json(event.payload).decode()
                for column, value in zip(columns, list(row.values())[:11], strict=True):
                    column.append(value)
            inserted = set((await conn.exec_driver_sql(PG_MIRROR, (*columns, now))).scalars())
        claimed = [event for event, handle in events if handle and event.id in inserted]
        if claimed:
            expires = now + timedelta(seconds=lease_seconds)
            if self.db.is_sqlite:
                claims = [{"event_id": e.id, "owner": owner, "expires_at": expires} for e in claimed]
                await conn.execute(sa.insert(CLAIMS), claims)
            else:
                await conn.exec_driver_sql(PG_CLAIM, ([e.id for e in claimed], owner, expires))
        if self.mirrored is not None:
            self.mirrored.inc(len(inserted))
            self.duplicates.inc(len(events) - len(inserted))
        if inserted:
            self.on_mirrored()
        return claimed

    async def complete(self, conn: AsyncConnection, ids: Sequence[UUID]) -> None:
        """Drop the claims of events whose handlers have all run."""
        await conn.execute(self._complete, {"ids": list(ids)})

    async def reclaim(self, conn: AsyncConnection, *, owner: str, lease_seconds: float, limit: int) -> list[Event]:
        """Take over claims whose lease expired (their consumer died); their events, in mirror order."""
        now = utcnow()
        expired = (
            sa.select(CLAIMS.c.event_id)
            .where(CLAIMS.c.expires_at < now)
            .order_by(CLAIMS.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            sa.update(CLAIMS)
            .where(CLAIMS.c.event_id.in_(expired.scalar_subquery()))
            .values(owner=owner, expires_at=now + timedelta(seconds=lease_seconds))
            .returning(CLAIMS.c.event_id)
        )
        ids = list((await conn.execute(claim)).scalars())
        if not ids:
            return []
        rows = (await conn.execute(sa.select(MIRROR).where(MIRROR.c.id.in_(ids)).order_by(MIRROR.c.seq))).mappings()
        return [to_event(row) for row in rows]

    async def unhandled(self, conn: AsyncConnection, ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``ids`` still have handlers to run."""
        if not ids:
            return set()
        return set((await conn.execute(sa.select(CLAIMS.c.event_id).where(CLAIMS.c.event_id.in_(list(ids))))).scalars())

    async def dead_letter(self, conn: AsyncConnection, letters: Sequence[Any]) -> None:
        """Write ``letters`` to ``dlq_events``."""
        now = utcnow()
        rows = [
            {
                "id": uuid7(),
                "event_id": letter.event.id if letter.event else letter.event_id,
                "topic": _storable(letter.topic[:255]),
                "type": letter.event.type if letter.event else None,
                "subject_id": letter.event.subject_id if letter.event else None,
                "handler": letter.handler,
                "reason": letter.reason,
                "error": _storable(letter.error),
                "traceback": _storable(letter.traceback),
                "attempts": letter.attempts,
                "event": letter.event.model_dump(mode="json") if letter.event else None,
                "raw": _storable(letter.raw.decode("utf-8", "replace")) if letter.raw is not None else None,
                "created_at": now,
                "last_attempt_at": now,
            }
            for letter in letters
        ]
        await conn.execute(sa.insert(DLQ), rows)


def _storable(text: str | None) -> str | None:
    """``text`` without the NUL characters PostgreSQL refuses (an unusable message may hold any)."""
    return text.replace("\x00", "\ufffd") if text else text
