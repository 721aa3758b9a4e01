"""Reading the stored logs: filtered cursor pages, counts, and the live feed behind the SSE stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from builtin_plugins.monitoring.models import ApplicationLog, LogStreamEntry, SystemMetric
from kernel.db import Database
from kernel.pagination import invalid_cursor
from sdk import decode_cursor, encode_cursor, keyset_after, split_page

LEVELS = ("debug", "info", "warning", "error", "critical")
LOGS = ApplicationLog.__table__  # type: ignore[attr-defined]
FEED = LogStreamEntry.__table__  # type: ignore[attr-defined]
SAMPLES = SystemMetric.__table__  # type: ignore[attr-defined]
STREAM_GRACE_SECONDS = 5.0
"""How long the stream waits for a lower-numbered line committed late before giving up on it."""


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Filters shared by the list, stats and stream endpoints (all optional)."""

    levels: Sequence[str] = ()
    min_level: str | None = None
    service: str | None = None
    trace_id: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.levels:
            found.append(LOGS.c.level.in_(list(self.levels)))
        if self.min_level:
            found.append(LOGS.c.level.in_(LEVELS[LEVELS.index(self.min_level) :]))
        for column, value in (
            (LOGS.c.service, self.service),
            (LOGS.c.trace_id, self.trace_id),
            (LOGS.c.request_id, self.request_id),
        ):
            if value:
                found.append(column == value)
        if self.since:
            found.append(LOGS.c.ts >= self.since)
        if self.until:
            found.append(LOGS.c.ts < self.until)
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found.append(LOGS.c.message.ilike(f"%{escaped}%", escape="\\"))
        return found

    def matches(self, row: Any) -> bool:
        """The same filter applied in Python (for the live feed)."""
        if self.levels and row.level not in self.levels:
            return False
        if self.min_level and (row.level not in LEVELS or LEVELS.index(row.level) < LEVELS.index(self.min_level)):
            return False
        if self.service and row.service != self.service:
            return False
        if self.trace_id and row.trace_id != self.trace_id:
            return False
        if self.request_id and row.request_id != self.request_id:
            return False
        return not (self.text and self.text.lower() not in row.message.lower())


def row_dict(row: Any) -> dict[str, Any]:
    """A log row as the API returns it."""
    ts = row.ts if row.ts.tzinfo else row.ts.replace(tzinfo=UTC)
    return {
        "id": str(row.id),
        "ts": ts.isoformat(),
        "level": row.level,
        "service": row.service,
        "logger": row.logger,
        "message": row.message,
        "trace_id": row.trace_id,
        "request_id": row.request_id,
        "instance": row.instance,
        "context": row.context if isinstance(row.context, dict) else json.loads(row.context or "{}"),
    }


def _after(cursor: str) -> tuple[datetime, uuid.UUID]:
    ts, ident = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(ts)), uuid.UUID(str(ident))
    except ValueError:
        raise invalid_cursor() from None


class LogReader:
    """Queries over ``application_logs`` and ``log_stream``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, filters: LogFilter, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; ``next_cursor`` continues after the last line of this page."""
        order = (LOGS.c.ts, LOGS.c.id)
        query = sa.select(LOGS).where(*filters.conditions())
        if cursor is not None:
            query = query.where(keyset_after(order, _after(cursor), descending=True))
        query = query.order_by(*(c.desc() for c in order)).limit(limit + 1)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page, more = split_page(rows, limit)
        items = [row_dict(r) for r in page]
        next_cursor = encode_cursor([items[-1]["ts"], items[-1]["id"]]) if more else None
        return items, next_cursor

    async def stats(self, filters: LogFilter) -> dict[str, Any]:
        """Line counts in the filtered window, by level and by service."""
        conditions = filters.conditions()
        async with self.db.engine.connect() as conn:
            by_level = (
                await conn.execute(sa.select(LOGS.c.level, sa.func.count()).where(*conditions).group_by(LOGS.c.level))
            ).all()
            by_service = (
                await conn.execute(
                    sa.select(LOGS.c.service, sa.func.count()).where(*conditions).group_by(LOGS.c.service)
                )
            ).all()
        levels = {level: int(count) for level, count in by_level}
        return {
            "total": sum(levels.values()),
            "by_level": levels,
            "by_service": {service: int(count) for service, count in by_service},
        }

    async def latest_seq(self) -> int:
        async with self.db.engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.max(FEED.c.seq)))).scalar() or 0)

    async def follow(
        self, filters: LogFilter, after: int | None, poll_seconds: float, batch: int = 500
    ) -> AsyncIterator[tuple[int, dict[str, Any]]]:
        """Yield ``(seq, line)`` for lines written after feed position ``after`` (default: now), for
        as long as the caller iterates. A line numbered below one already seen (a concurrent
        transaction committing late) is still delivered if it appears within the grace period."""
        floor = await self.latest_seq() if after is None else after
        seen: dict[int, float] = {}
        query = sa.select(FEED.c.seq, LOGS).join(LOGS, LOGS.c.id == FEED.c.log_id).order_by(FEED.c.seq).limit(batch)
        while True:
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query.where(FEED.c.seq > floor))).all()
            now = time.monotonic()
            for row in rows:
                if row.seq in seen:
                    continue
                seen[row.seq] = now
                if filters.matches(row):
                    yield row.seq, row_dict(row)
            settled = [seq for seq, first in seen.items() if now - first >= STREAM_GRACE_SECONDS]
            if settled:
                floor = max(floor, max(settled))
                seen = {seq: first for seq, first in seen.items() if seq > floor}
            if len(rows) < batch:
                await asyncio.sleep(poll_seconds)

    async def samples(
        self,
        limit: int,
        cursor: str | None,
        name: str | None = None,
        instance: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """System metric samples, newest first."""
        order = (SAMPLES.c.recorded_at, SAMPLES.c.id)
        query = sa.select(SAMPLES)
        for column, value in ((SAMPLES.c.name, name), (SAMPLES.c.instance, instance)):
            if value:
                query = query.where(column == value)
        if since:
            query = query.where(SAMPLES.c.recorded_at >= since)
        if until:
            query = query.where(SAMPLES.c.recorded_at < until)
        if cursor is not None:
            query = query.where(keyset_after(order, _after(cursor), descending=True))
        query = query.order_by(*(c.desc() for c in order)).limit(limit + 1)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        page, more = split_page(rows, limit)
        items = [
            {
                "id": str(r.id),
                "recorded_at": r.recorded_at.isoformat(),
                "instance": r.instance,
                "name": r.name,
                "value": r.value,
            }
            for r in page
        ]
        next_cursor = encode_cursor([items[-1]["recorded_at"], items[-1]["id"]]) if more else None
        return items, next_cursor
