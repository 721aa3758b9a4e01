"""The live feed behind ``GET /api/v1/events/stream``: one poller per process follows the mirror
and fans each new row out to every connected stream.

Rows are followed by ``seq``. Concurrent writers can commit a lower ``seq`` after a higher one is
visible, so a hole in the sequence is watched for ``GAP_SECONDS`` before it is given up (holes also
come from rolled-back inserts and duplicate deliveries, which use up a number each).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import structlog

from sdk import ServiceUnavailable

log = structlog.get_logger("taylordash.events.live")
GAP_SECONDS = 5.0
MAX_GAPS = 10_000
BATCH = 500
START_SECONDS = 5.0


class Listener:
    """One stream's queue. A listener that falls ``maxsize`` rows behind is dropped (its stream
    ends and the client resumes with ``Last-Event-ID``)."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Mapping[str, Any] | None] = asyncio.Queue(maxsize)
        self.dropped = False

    def offer(self, row: Mapping[str, Any] | None) -> bool:
        """Queue ``row``; ``False`` (and ``dropped``) when the listener is too far behind."""
        try:
            self.queue.put_nowait(row)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            return False


class LiveFeed:
    """Follows ``events_mirror`` for the streams of this process."""

    def __init__(self, service: Any, poll_seconds: float, listener_queue: int = 1000) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self.listener_queue = listener_queue
        self._listeners: set[Listener] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self._high = 0
        self._gaps: dict[int, float] = {}

    def notify(self) -> None:
        """Rows were mirrored in this process: look now rather than at the next poll."""
        self._wake.set()

    async def attach(self) -> Listener:
        """A new listener, receiving every row mirrored from now on."""
        listener = Listener(self.listener_queue)
        self._listeners.add(listener)
        if self._task is None:
            self._started = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._follow(), name="events-live")
        try:
            async with asyncio.timeout(START_SECONDS):
                await self._started.wait()
        except TimeoutError:
            self.detach(listener)
            raise ServiceUnavailable(
                "the event mirror cannot be read right now", headers={"Retry-After": "5"}
            ) from None
        return listener

    def detach(self, listener: Listener) -> None:
        """Stop feeding ``listener`` (its stream ended)."""
        self._listeners.discard(listener)

    @property
    def position(self) -> int:
        """The highest ``seq`` handed to listeners so far."""
        return self._high

    async def stop(self) -> None:
        """Stop following and end every stream."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for listener in list(self._listeners):
            listener.offer(None)  # ends its stream (a full queue ends it through ``dropped``)
        self._listeners.clear()

    async def _follow(self) -> None:
        while True:  # the starting point: the newest row mirrored so far
            try:
                self._high = await self.service.last_seq()
                break
            except Exception as exc:
                log.warning("events.live_poll_failed", error=str(exc) or type(exc).__name__)
                if not self._listeners:
                    self._task = None
                    return
                await asyncio.sleep(self.poll_seconds)
        self._gaps.clear()
        self._started.set()
        while self._listeners:
            self._wake.clear()
            try:
                rows = await self.service.mirror_after(self._high, BATCH, list(self._gaps))
            except Exception as exc:
                log.warning("events.live_poll_failed", error=str(exc) or type(exc).__name__)
                rows = []
            self._advance(rows)
            for row in rows:
                for listener in list(self._listeners):
                    if not listener.offer(row):
                        self._listeners.discard(listener)
            if len(rows) < BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._wake.wait()
        self._task = None

    def _advance(self, rows: list[Mapping[str, Any]]) -> None:
        now = time.monotonic()
        for row in rows:
            seq = row["seq"]
            if self._gaps.pop(seq, None) is None and seq > self._high:
                for missing in range(max(self._high + 1, seq - MAX_GAPS), seq):
                    self._gaps[missing] = now
                self._high = seq
        for seq, seen in list(self._gaps.items()):
            if now - seen > GAP_SECONDS:
                del self._gaps[seq]
