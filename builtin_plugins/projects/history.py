"""Time travel: a project's state at a past moment, rebuilt by replaying its events.

Every event this plugin publishes names its ``project_id`` and carries the object's document after the
change (``None`` once deleted), so replaying a project's events in order up to the moment yields the
objects as they were; the derived fields (progress, counters, ``depends_on``) are then recomputed.
The events come from the events plugin's mirror and, for the newest ones, the kernel's outbox.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from builtin_plugins.projects.lean import Lender
from builtin_plugins.projects.queries import parse_timestamp
from builtin_plugins.projects.service import mean
from sdk import NotFound

FAMILIES = ("projects", "components", "tasks")
# Envelopes are appended just after they are created: allow for the gap when filtering by row time.
APPEND_SLACK = timedelta(seconds=5)
MIRROR = sa.table(
    "events_mirror",
    sa.column("seq", sa.BigInteger),
    sa.column("id", sa.Uuid),
    sa.column("type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("payload", sa.JSON),
)
OUTBOX = sa.table(
    "event_outbox",
    sa.column("seq", sa.BigInteger),
    sa.column("topic", sa.String),
    sa.column("body", sa.Text),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


@dataclass
class Snapshot:
    """Documents by id, as the API renders them."""

    project: dict[str, Any] | None = None
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def apply(self, event: dict[str, Any]) -> None:
        family, action = event["type"].split(".", 1)
        payload, subject = event["payload"], event["subject_id"]
        if family == "projects":
            self.project = payload.get("after")
        elif action == "dependency_added":
            self.edges.add((payload["after"]["component_id"], payload["after"]["depends_on_id"]))
        elif action == "dependency_removed":
            self.edges.discard((payload["before"]["component_id"], payload["before"]["depends_on_id"]))
        else:
            objects = self.components if family == "components" else self.tasks
            if payload.get("after") is None:
                objects.pop(subject, None)
            else:
                objects[subject] = dict(payload["after"])

    def settle(self) -> None:
        """Recompute what the database derives: roll-ups, counters and dependency lists."""
        counts: dict[str, list[int]] = {cid: [0, 0, 0] for cid in self.components}
        for task in self.tasks.values():
            if task["component_id"] in counts:
                c = counts[task["component_id"]]
                c[0] += 1
                c[1] += task["progress"]
                c[2] += task["estimate_minutes"] or 0
        depends: dict[str, list[str]] = {cid: [] for cid in self.components}
        for src, dst in self.edges:
            if src in depends and dst in depends:
                depends[src].append(dst)
        for cid, component in self.components.items():
            count, total, estimate = counts[cid]
            component.update(
                task_count=count,
                progress=mean(total, count),
                task_estimate_minutes=estimate,
                depends_on=sorted(depends[cid]),
            )
        if self.project is not None:
            progress = [c["progress"] for c in self.components.values()]
            self.project = {
                **self.project,
                "component_count": len(progress),
                "progress": mean(sum(progress), len(progress)),
            }


class History:
    """Reads a project's events and replays them.

    Two sources, merged by event id: the events plugin's ``events_mirror`` (the durable log; read by
    its table, named in the architecture contract, since that plugin offers no history query yet) and
    the kernel's ``event_outbox`` (events committed but not mirrored yet; the processor deletes rows
    as it mirrors them). Without the mirror table only the outbox is read."""

    def __init__(self, lender: Lender) -> None:
        self.lender = lender
        self.pg = lender.dialect.name == "postgresql"
        self._has_mirror: bool | None = None
        in_outbox = (
            sa.literal_column("(CAST(event_outbox.body AS jsonb) #>> '{payload,project_id}')")
            if self.pg
            else sa.func.json_extract(OUTBOX.c.body, "$.payload.project_id")
        )
        topics = sa.or_(*(OUTBOX.c.topic.like(f"tracker/events/{f}/%") for f in FAMILIES))
        outbox_until = OUTBOX.c.created_at <= sa.bindparam("until", type_=sa.DateTime(timezone=True))
        ours = sa.and_(topics, in_outbox == sa.bindparam("project_id"))
        self._outbox = lender.statement(
            ("history-outbox",),
            lambda: sa.select(OUTBOX.c.body).where(ours, outbox_until).order_by(OUTBOX.c.seq),
        )
        in_mirror = (
            sa.literal_column("(events_mirror.payload ->> 'project_id')")
            if self.pg
            else sa.func.json_extract(MIRROR.c.payload, "$.project_id")
        )
        families = sa.or_(*(MIRROR.c.type.like(f"{f}.%") for f in FAMILIES))
        mine = sa.and_(families, in_mirror == sa.bindparam("project_id"))
        payload = sa.cast(MIRROR.c.payload, sa.Text) if self.pg else MIRROR.c.payload
        mirror_until = MIRROR.c.occurred_at <= sa.bindparam("until", type_=sa.DateTime(timezone=True))
        columns = (sa.cast(MIRROR.c.id, sa.Text), MIRROR.c.type, MIRROR.c.subject_id, MIRROR.c.occurred_at, payload)
        self._mirror = lender.statement(
            ("history-mirror",),
            lambda: sa.select(*columns).where(mine, mirror_until).order_by(MIRROR.c.occurred_at, MIRROR.c.seq),
        )

    async def _mirror_exists(self) -> bool:
        if self._has_mirror is None:
            async with self.lender.engine.connect() as conn:
                self._has_mirror = await conn.run_sync(lambda c: sa.inspect(c).has_table("events_mirror"))
        return self._has_mirror

    async def events(self, project_id: uuid.UUID, until: datetime) -> list[dict[str, Any]]:
        """The project's events that occurred at or before ``until``, oldest first."""
        found: dict[str, dict[str, Any]] = {}
        params = {"project_id": str(project_id), "until": until}
        mirrored = await self._mirror_exists()
        async with self.lender.lease() as lent:
            # Outbox first: the processor moves an event from the outbox to the mirror in one
            # transaction, so an event missing from this read is in the mirror by the next one.
            outbox = await self.lender.fetch(lent, self._outbox, {**params, "until": until + APPEND_SLACK})
            if mirrored:
                for ident, type_, subject, occurred, body in await self.lender.fetch(lent, self._mirror, params):
                    occurred = occurred if isinstance(occurred, datetime) else parse_timestamp(occurred)
                    found[str(uuid.UUID(ident))] = {
                        "id": str(uuid.UUID(ident)),
                        "type": type_,
                        "subject_id": subject,
                        "occurred_at": occurred.astimezone(UTC),
                        "payload": json.loads(body),
                    }
        for (body,) in outbox:
            event = json.loads(body)
            event["occurred_at"] = parse_timestamp(event["occurred_at"])
            if event["occurred_at"] <= until:
                found.setdefault(event["id"], event)
        return sorted(found.values(), key=lambda e: (e["occurred_at"], e["id"]))

    async def snapshot(self, project_id: uuid.UUID, as_of: datetime) -> Snapshot:
        """The project at ``as_of``; 404 when it did not exist then, or when its oldest events are no
        longer kept (``history-unavailable``: replaying a truncated history would be wrong)."""
        events = await self.events(project_id, as_of)
        if events and events[0]["type"] != "projects.created":
            raise NotFound(
                f"the event history of project {project_id} is not kept that far back",
                slug="history-unavailable",
            )
        snapshot = Snapshot()
        for event in events:
            snapshot.apply(event)
        if snapshot.project is None:
            raise NotFound(f"project {project_id} did not exist at {as_of.isoformat()}")
        snapshot.settle()
        return snapshot
