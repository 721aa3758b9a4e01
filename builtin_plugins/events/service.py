"""Reading the mirror and working the dead-letter queue (list, replay, discard). No HTTP here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from builtin_plugins.events.live import LiveFeed
from builtin_plugins.events.queries import ADMIN_ONLY_TOPICS, decode_cursor, encode_cursor, topic_condition
from builtin_plugins.events.schemas import (
    ActorOut,
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterQuery,
    EventOut,
    EventPage,
    EventQuery,
    ReplayFilter,
    ReplayOut,
    ReplaySummary,
)
from builtin_plugins.events.store import DLQ, MIRROR, MirrorStore, aware, utcnow
from kernel.bus import matches
from kernel.bus.processor import HandlerFailed, Unprocessable
from kernel.bus.store import OVERSIZED
from sdk import Conflict, Event, NotFound

SOURCE = "events"


def event_out(row: Mapping[str, Any], handled: bool = True) -> EventOut:
    """The API view of a mirror row (``handled``: no handler of it is still to run)."""
    actor = ActorOut(id=row["actor_id"], role=row["actor_role"]) if row["actor_id"] else None
    return EventOut(
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
        seq=row["seq"],
        mirrored_at=aware(row["mirrored_at"]),
        handled=handled,
    )


def letter_out(row: Mapping[str, Any]) -> DeadLetterOut:
    """The API view of a dead-letter row."""
    data = dict(row)
    data["created_at"] = aware(row["created_at"])
    data["last_attempt_at"] = aware(row["last_attempt_at"])
    return DeadLetterOut.model_validate(data)


def visible_to(admin: bool) -> list[sa.ColumnElement[bool]]:
    """Conditions hiding admin-only events from principals without ``events:admin``."""
    return [] if admin else [sa.not_(topic_condition(MIRROR.c.topic, ADMIN_ONLY_TOPICS)[0])]


async def _page(
    conn: Any,
    table: sa.Table,
    order: Any,
    conditions: list[sa.ColumnElement[bool]],
    position: Any,
    limit: int,
    keep: Any,
) -> tuple[list[Mapping[str, Any]], Any]:
    """Up to ``limit`` rows in descending ``order`` after ``position``, re-checked by ``keep`` (for
    topic filters SQL cannot express exactly); also the cursor value of the next page or ``None``."""
    items: list[Mapping[str, Any]] = []
    while len(items) <= limit:
        wanted = limit + 1 - len(items)
        where = [*conditions] + ([order < position] if position is not None else [])
        rows = (await conn.execute(sa.select(table).where(*where).order_by(order.desc()).limit(wanted))).mappings()
        rows = rows.all()
        for row in rows:
            position = row[order.key]
            if keep(row):
                items.append(row)
        if len(rows) < wanted:
            break
    more = len(items) > limit
    return items[:limit], (items[limit - 1][order.key] if more else None)


class EventsService:
    """The mirror and the dead-letter queue of one kernel."""

    def __init__(self, kernel: Any, live_poll_seconds: float = 0.5) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.live = LiveFeed(self, live_poll_seconds)
        self.store = MirrorStore(kernel.db, on_mirrored=self.live.notify)

    # -- the mirror -------------------------------------------------------------------------------
    async def list_events(self, query: EventQuery, admin: bool) -> EventPage:
        """A page of mirrored events matching ``query``, newest first (admin-only ones need ``admin``)."""
        conditions = visible_to(admin)
        exact = True
        if query.topic:
            condition, exact = topic_condition(MIRROR.c.topic, query.topic)
            conditions.append(condition)
        for column, value in (
            (MIRROR.c.type, query.type),
            (MIRROR.c.subject_id, query.subject_id),
            (MIRROR.c.actor_id, query.actor_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if query.since:
            conditions.append(MIRROR.c.occurred_at >= query.since)
        if query.until:
            conditions.append(MIRROR.c.occurred_at < query.until)
        position = int(decode_cursor(query.cursor)) if query.cursor else None
        keep = (lambda row: True) if exact else (lambda row: matches(query.topic, row["topic"]))
        async with self.db.engine.connect() as conn:
            rows, after = await _page(conn, MIRROR, MIRROR.c.seq, conditions, position, query.limit, keep)
            pending = await self.store.unhandled(conn, [row["id"] for row in rows])
        return EventPage(
            items=[event_out(row, row["id"] not in pending) for row in rows],
            next_cursor=encode_cursor(after) if after is not None else None,
        )

    async def get_event(self, event_id: UUID, admin: bool) -> EventOut | None:
        """One mirrored event, or ``None`` (also when only admins may see it and ``admin`` is false)."""
        async with self.db.engine.connect() as conn:
            query = sa.select(MIRROR).where(MIRROR.c.id == event_id, *visible_to(admin))
            row = (await conn.execute(query)).mappings().first()
            pending = await self.store.unhandled(conn, [row["id"]]) if row is not None else set()
        return event_out(row, not pending) if row is not None else None

    async def mirror_after(self, seq: int, limit: int, also: Sequence[int] = ()) -> list[dict[str, Any]]:
        """Mirror rows past ``seq`` (and the rows ``also`` names), oldest first, each with ``handled``."""
        where = MIRROR.c.seq > seq
        if also:
            where = sa.or_(where, MIRROR.c.seq.in_(list(also)))
        async with self.db.engine.connect() as conn:
            query = sa.select(MIRROR).where(where).order_by(MIRROR.c.seq).limit(limit)
            rows = [dict(row) for row in (await conn.execute(query)).mappings()]
            pending = await self.store.unhandled(conn, [row["id"] for row in rows])
        for row in rows:
            row["handled"] = row["id"] not in pending
        return rows

    async def last_seq(self) -> int:
        """The highest ``seq`` in the mirror (0 when empty)."""
        async with self.db.engine.connect() as conn:
            return int(await conn.scalar(sa.select(sa.func.coalesce(sa.func.max(MIRROR.c.seq), 0))) or 0)

    # -- the dead-letter queue --------------------------------------------------------------------
    @staticmethod
    def _letter_conditions(query: DeadLetterQuery | ReplayFilter) -> tuple[list[sa.ColumnElement[bool]], Any]:
        conditions: list[sa.ColumnElement[bool]] = []
        exact = True
        if query.topic:
            condition, exact = topic_condition(DLQ.c.topic, query.topic)
            conditions.append(condition)
        if query.handler:
            conditions.append(DLQ.c.handler == query.handler)
        if query.reason:
            conditions.append(DLQ.c.reason == query.reason)
        if query.since:
            conditions.append(DLQ.c.created_at >= query.since)
        if query.until:
            conditions.append(DLQ.c.created_at < query.until)
        keep = (lambda row: True) if exact else (lambda row: matches(query.topic, row["topic"]))
        return conditions, keep

    async def list_letters(self, query: DeadLetterQuery) -> DeadLetterPage:
        """A page of dead letters matching ``query``, newest first."""
        conditions, keep = self._letter_conditions(query)
        position = UUID(str(decode_cursor(query.cursor))) if query.cursor else None
        async with self.db.engine.connect() as conn:
            rows, after = await _page(conn, DLQ, DLQ.c.id, conditions, position, query.limit, keep)
        return DeadLetterPage(
            items=[letter_out(row) for row in rows], next_cursor=encode_cursor(str(after)) if after else None
        )

    async def get_letter(self, letter_id: UUID) -> DeadLetterOut | None:
        """One dead letter, or ``None``."""
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sa.select(DLQ).where(DLQ.c.id == letter_id))).mappings().first()
        return letter_out(row) if row is not None else None

    async def select_letters(self, selection: ReplayFilter) -> list[UUID]:
        """Ids of the entries ``selection`` names, oldest first."""
        conditions, keep = self._letter_conditions(selection)
        if selection.ids is not None:
            conditions.append(DLQ.c.id.in_(selection.ids))
        async with self.db.engine.connect() as conn:
            query = sa.select(DLQ.c.id, DLQ.c.topic).where(*conditions).order_by(DLQ.c.id)
            rows = (await conn.execute(query.limit(selection.limit))).mappings().all()
        return [row["id"] for row in rows if keep(row)]

    async def replay(self, letter_id: UUID, actor: Any = None) -> ReplayOut:
        """Run the entry's handler again (or process its message again); on success the entry goes."""
        letter = await self.get_letter(letter_id)
        if letter is None:
            raise NotFound(f"no dead letter with id {letter_id}")
        if letter.reason == OVERSIZED:
            raise Conflict(
                "an oversized message cannot be replayed: only its first bytes were kept", slug="not-replayable"
            )
        processor = self.kernel.bus.processor
        try:
            if letter.handler:
                await processor.run_handler(letter.handler, Event.model_validate(letter.event))
            else:
                await processor.resubmit(letter.topic, (letter.raw or "").encode())
        except LookupError:
            raise Conflict(
                f"handler {letter.handler} is not registered here (is its plugin disabled?)",
                slug="handler-not-registered",
            ) from None
        except (HandlerFailed, Unprocessable) as exc:
            error = exc.error if isinstance(exc, HandlerFailed) else str(exc)
            trace = exc.trace if isinstance(exc, HandlerFailed) else None
            await self._failed_again(letter, error, trace)
            return ReplayOut(id=letter.id, status="failed", error=error)
        await self._remove([letter], "system.dlq_replayed", actor)
        return ReplayOut(id=letter.id, status="replayed")

    async def replay_matching(self, selection: ReplayFilter, actor: Any = None) -> ReplaySummary:
        """Replay, oldest first, the entries ``selection`` names; one outcome each."""
        outcomes = []
        for letter_id in await self.select_letters(selection):
            try:
                outcomes.append(await self.replay(letter_id, actor))
            except (NotFound, Conflict) as exc:
                outcomes.append(ReplayOut(id=letter_id, status="failed", error=exc.detail))
        replayed = sum(1 for outcome in outcomes if outcome.status == "replayed")
        return ReplaySummary(replayed=replayed, failed=len(outcomes) - replayed, items=outcomes)

    async def discard(self, letter_id: UUID, actor: Any = None) -> None:
        """Remove one entry (404 problem when there is none), recording who did."""
        letter = await self.get_letter(letter_id)
        if letter is None:
            raise NotFound(f"no dead letter with id {letter_id}")
        await self._remove([letter], "system.dlq_discarded", actor)

    async def discard_matching(self, selection: ReplayFilter, actor: Any = None) -> int:
        """Remove the entries ``selection`` names; how many went."""
        letters = [letter for i in await self.select_letters(selection) if (letter := await self.get_letter(i))]
        await self._remove(letters, "system.dlq_discarded", actor)
        return len(letters)

    async def _failed_again(self, letter: DeadLetterOut, error: str, trace: str | None) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                sa.update(DLQ)
                .where(DLQ.c.id == letter.id)
                .values(attempts=DLQ.c.attempts + 1, error=error, traceback=trace, last_attempt_at=utcnow())
            )

    async def _remove(self, letters: Sequence[DeadLetterOut], event_type: str, actor: Any) -> None:
        """Delete entries and record why, in one transaction (the events land in the outbox)."""
        if not letters:
            return
        async with self.db.session() as session:
            connection = await session.connection()
            await connection.execute(sa.delete(DLQ).where(DLQ.c.id.in_([letter.id for letter in letters])))
            for letter in letters:
                payload = {
                    "event_id": str(letter.event_id) if letter.event_id else None,
                    "handler": letter.handler,
                    "reason": letter.reason,
                    "topic": letter.topic,
                }
                event = Event.create(
                    type=event_type, source=SOURCE, subject_id=str(letter.id), payload=payload, actor=actor
                )
                await self.kernel.publish(session, event)
            await session.commit()
