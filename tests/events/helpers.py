"""Helpers of the event-pipeline tests."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from kernel.app import Kernel
from sdk import Event, EventHandler, hookimpl

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds}s (last result {result!r})")
        await asyncio.sleep(interval)


async def scalar(kernel: Kernel, sql: str, **params: Any) -> Any:
    async with kernel.db.engine.connect() as conn:
        return await conn.scalar(sa.text(sql), params)


async def rows(kernel: Kernel, sql: str, **params: Any) -> list[Any]:
    async with kernel.db.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


async def mirrored(kernel: Kernel) -> int:
    return int(await scalar(kernel, "SELECT count(*) FROM events_mirror"))


async def publish(
    kernel: Kernel, count: int, type: str = "projects.created", batch: int = 100, first: int = 0, **fields: Any
) -> list[Event]:
    """Publish ``count`` events (payload ``n`` from ``first`` on) through ``kernel.publish``,
    ``batch`` per transaction."""
    events = []
    for start in range(first, first + count, batch):
        async with kernel.db.session() as session:
            for n in range(start, min(first + count, start + batch)):
                subject = fields.get("subject_id", f"s{n}")
                event = Event.create(type=type, source="tests", subject_id=subject, payload={"n": n})
                await kernel.publish(session, event)
                events.append(event)
            await session.commit()
    return events


class Recorder:
    """A plugin whose handlers record what they see; ``fail`` maps an event's payload ``n`` to the
    number of times its handler raises before succeeding (``-1``: always)."""

    def __init__(self, pattern: str = "tracker/events/#", name: str = "record") -> None:
        self.pattern = pattern
        self.name = name
        self.seen: list[Event] = []
        self.by_id: dict[Any, int] = defaultdict(int)
        self.calls: dict[Any, int] = defaultdict(int)
        self.fail: dict[Any, int] = {}
        self.delay: dict[Any, float] = {}

    async def handle(self, event: Event) -> None:
        key = event.payload.get("n")
        self.calls[key] += 1
        self.by_id[event.id] += 1
        if key in self.delay:
            await asyncio.sleep(self.delay[key])
        remaining = self.fail.get(key, 0)
        if remaining == -1 or self.calls[key] <= remaining:
            raise RuntimeError(f"boom {key}")
        self.seen.append(event)

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        return [EventHandler(self.pattern, self.handle, self.name)]
