"""Read every event committed so far, however far the pipeline has moved it.

An event sits in the kernel's outbox until the processor moves it into the events mirror, in one
transaction. Reading the outbox first and the mirror next therefore sees each event at least once;
deduplicating by id makes it exactly once.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

MIRROR_COLUMNS = "id, type, topic, source, subject_id, actor_id, actor_role, occurred_at, payload"


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


async def committed_events(engine: AsyncEngine, source: str | None = None) -> list[dict[str, Any]]:
    """Envelopes of every committed event (optionally only from ``source``), oldest first."""
    events: dict[str, dict[str, Any]] = {}
    async with engine.connect() as conn:
        pending = [json.loads(b) for (b,) in await conn.execute(sa.text("SELECT body FROM event_outbox ORDER BY seq"))]
        mirrored = await conn.execute(sa.text(f"SELECT {MIRROR_COLUMNS} FROM events_mirror ORDER BY seq"))
        for row in mirrored.mappings():
            payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
            ident = str(uuid.UUID(str(row["id"])))
            events[ident] = {
                "id": ident,
                "type": row["type"],
                "topic": row["topic"],
                "source": row["source"],
                "subject_id": row["subject_id"],
                "actor": {"id": row["actor_id"], "role": row["actor_role"]} if row["actor_id"] else None,
                "payload": payload,
                "occurred_at": _when(row["occurred_at"]),
            }
    for event in pending:
        event["occurred_at"] = _when(event["occurred_at"])
        events.setdefault(str(uuid.UUID(event["id"])), event)
    chosen = [e for e in events.values() if source is None or e["source"] == source]
    return sorted(chosen, key=lambda e: (e["occurred_at"], e["id"]))
