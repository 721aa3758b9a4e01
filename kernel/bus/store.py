"""Where the processor keeps what it consumed. The events plugin provides the real store (the
``events_mirror`` and ``dlq_events`` tables); without one, handlers still run, at least once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.bus.envelope import Event

log = structlog.get_logger("taylordash.bus.store")

HANDLER_FAILED = "handler-failed"
MALFORMED = "malformed"
OVERSIZED = "oversized"
UNKNOWN_SCHEMA_VERSION = "unknown-schema-version"
REASONS = (HANDLER_FAILED, MALFORMED, OVERSIZED, UNKNOWN_SCHEMA_VERSION)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the processor gives up on: a handler kept failing (``handler`` names it), or the
    message itself cannot be used (``raw`` holds its first bytes, ``event`` is ``None``)."""

    reason: str
    topic: str
    error: str
    event: Event | None = None
    event_id: UUID | None = None
    handler: str | None = None
    traceback: str | None = None
    attempts: int = 0
    raw: bytes | None = None


class EventStore(Protocol):
    """What the processor needs from a store. Each method runs inside the transaction of ``conn``,
    which the processor commits (together with its own bookkeeping)."""

    async def accept(
        self, conn: AsyncConnection, events: Sequence[tuple[Event, bool]], *, owner: str, lease_seconds: float
    ) -> list[Event]:
        """Store each event once; an event already stored is a duplicate delivery and is ignored.
        Return the newly stored events flagged ``True`` (they have handlers), claimed for handling by
        ``owner`` for ``lease_seconds``."""
        ...

    async def complete(self, conn: AsyncConnection, ids: Sequence[UUID]) -> None:
        """Record that every handler of these events has run (succeeded or been dead-lettered)."""
        ...

    async def reclaim(self, conn: AsyncConnection, *, owner: str, lease_seconds: float, limit: int) -> list[Event]:
        """Claim up to ``limit`` events whose handling lease expired unfinished (their consumer died)."""
        ...

    async def dead_letter(self, conn: AsyncConnection, letters: Sequence[DeadLetter]) -> None:
        """Keep ``letters`` for an operator to inspect, replay or discard."""
        ...


class NullStore:
    """The store used when no plugin provides one: nothing is kept, every event is handled."""

    async def accept(
        self, conn: AsyncConnection, events: Sequence[tuple[Event, bool]], *, owner: str, lease_seconds: float
    ) -> list[Event]:
        """Every event that needs handling, unclaimed: no store means at least once."""
        return [event for event, needs_handling in events if needs_handling]

    async def complete(self, conn: AsyncConnection, ids: Sequence[UUID]) -> None:
        """Nothing to record."""
        return None

    async def reclaim(self, conn: AsyncConnection, *, owner: str, lease_seconds: float, limit: int) -> list[Event]:
        """Nothing is ever claimed."""
        return []

    async def dead_letter(self, conn: AsyncConnection, letters: Sequence[DeadLetter]) -> None:
        """Log what cannot be kept."""
        for letter in letters:
            log.error(
                "bus.dead_letter_dropped",
                reason=letter.reason,
                topic=letter.topic,
                handler=letter.handler,
                error=letter.error,
                hint="no event store is installed (is the events plugin disabled?)",
            )
