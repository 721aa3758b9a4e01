"""The processor: consumes events, stores each once, runs plugin handlers, retries, dead-letters.

Messages arrive through a shared subscription, so every instance gets a share. They are decoded and
stored in batches, one transaction each (a duplicate delivery is a no-op), acknowledged, then
handled: the events of one subject in order, different subjects concurrently. A failing handler is
retried with capped exponential backoff in the background, so it never holds up the events behind
it; after ``attempts`` tries the event is dead-lettered for that handler. Unusable messages
(malformed, oversized, unknown schema version) are dead-lettered at once. Handling is claimed with a
lease: if an instance dies mid-way, another (or its successor) reclaims the event once it expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from uuid import UUID

import structlog

from kernel.bus.connection import DedicatedConnection
from kernel.bus.decode import decode
from kernel.bus.envelope import Event
from kernel.bus.metrics import BusMetrics
from kernel.bus.outbox import Outbox
from kernel.bus.store import HANDLER_FAILED, DeadLetter, EventStore, NullStore
from kernel.bus.topics import TopicError, check_filter, matches
from kernel.contributions import EventHandler
from kernel.db import Database
from kernel.errors import TaylorDashError

log = structlog.get_logger("taylordash.bus.processor")
STORE_RETRY_MAX_SECONDS = 10.0
COMPLETION_DELAY_SECONDS = 0.02
MATCH_CACHE_SIZE = 10_000  # topics are few (one per event type); foreign ones must not grow it forever


@dataclass(frozen=True, slots=True)
class ProcessorOptions:
    """Retry policy, limits and batch sizes of the processor."""

    attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 30.0
    max_payload_bytes: int = 262_144
    batch_size: int = 500
    max_pending: int = 1000

    @property
    def lease_seconds(self) -> float:
        """Long enough for every attempt of a handler, so a live owner never loses its claim."""
        return self.attempts * (self.timeout_seconds + self.backoff_max_seconds) + self.timeout_seconds

    def backoff(self, failures: int) -> float:
        """Delay before the attempt following ``failures`` failures, with jitter."""
        delay = min(self.backoff_seconds * 2 ** (failures - 1), self.backoff_max_seconds)
        return delay * random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A plugin's event handler under its stable name (``<plugin>.<handler name>``)."""

    name: str
    pattern: str
    run: Callable[[Event], Awaitable[None]]


class HandlerFailed(TaylorDashError):
    """A handler raised (or timed out) on a replayed event."""

    def __init__(self, handler: str, error: str, trace: str) -> None:
        self.handler, self.error, self.trace = handler, error, trace
        super().__init__(f"handler {handler} failed: {error}")


class Unprocessable(TaylorDashError):
    """A resubmitted message is still unusable."""

    def __init__(self, letter: DeadLetter) -> None:
        self.letter = letter
        super().__init__(f"{letter.reason}: {letter.error}")


def handler_name(plugin: str, handler: EventHandler) -> str:
    """The stable name dead letters and metrics use for ``handler``."""
    own = handler.name or getattr(handler.handler, "__qualname__", type(handler.handler).__name__)
    return f"{plugin}.{own}"


class Processor:
    """Consumes events for one kernel instance (``owner`` is its client id)."""

    def __init__(
        self, db: Database, outbox: Outbox, metrics: BusMetrics, options: ProcessorOptions, owner: str
    ) -> None:
        self.conn = DedicatedConnection(db.engine)
        self.outbox = outbox
        self.metrics = metrics
        self.options = options
        self.owner = owner
        self.store: EventStore = NullStore()
        self.handlers: list[BoundHandler] = []
        self._matching: dict[str, list[BoundHandler]] = {}
        self._inbox: asyncio.Queue[tuple[str, bytes, asyncio.Future[None]]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(options.max_pending)
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._handling: set[asyncio.Task[None]] = set()
        self._retrying: set[asyncio.Task[None]] = set()
        self._completed: list[UUID] = []
        self._completion = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._receiving = 0
        self._idle = asyncio.Event()

    # -- set-up -----------------------------------------------------------------------------------
    def bind(self, handlers: Sequence[tuple[str, EventHandler]], fail: Callable[[str, str], None]) -> None:
        """Use the handlers plugins registered; a plugin naming an invalid topic filter is failed."""
        bound: list[tuple[str, BoundHandler]] = []
        broken: set[str] = set()
        for plugin, handler in handlers:
            try:
                check_filter(handler.pattern)
            except TopicError as exc:
                fail(plugin, f"event handler {handler_name(plugin, handler)}: {exc}")
                broken.add(plugin)
                continue
            bound.append((plugin, BoundHandler(handler_name(plugin, handler), handler.pattern, handler.handler)))
        self.handlers = [handler for plugin, handler in bound if plugin not in broken]
        self._matching.clear()

    def matching(self, topic: str) -> list[BoundHandler]:
        """The handlers whose pattern matches ``topic``, in plugin order."""
        found = self._matching.get(topic)
        if found is None:
            found = [h for h in self.handlers if matches(h.pattern, topic)]
            if len(self._matching) < MATCH_CACHE_SIZE:
                self._matching[topic] = found
        return found

    def handler(self, name: str) -> BoundHandler | None:
        """The handler called ``name``, if a running plugin registered it."""
        return next((h for h in self.handlers if h.name == name), None)

    async def start(self) -> None:
        """Start consuming, recording completions and reclaiming expired claims."""
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._consume(), name="bus-processor"),
            loop.create_task(self._complete_loop(), name="bus-completions"),
            loop.create_task(self._reclaim_loop(), name="bus-reclaim"),
        ]

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop consuming, give running handlers ``grace_seconds``, record what completed."""
        await self.conn.cancel_between_transactions(self._workers[:1])  # the consumer
        running = self._handling | self._retrying
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        await self.conn.cancel_between_transactions(running)
        await self.conn.cancel_between_transactions(self._workers[1:])
        self._workers = []
        ids, self._completed = self._completed, []
        if ids:
            with contextlib.suppress(Exception):
                async with self.conn.begin() as conn:
                    await self.store.complete(conn, ids)
        await self.conn.close()

    async def drain(self, grace_seconds: float) -> None:
        """Wait (up to ``grace_seconds``) until every message received so far is stored."""
        if self._receiving:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_seconds):
                    await self._idle.wait()

    # -- consuming --------------------------------------------------------------------------------
    async def receive(self, topic: str, payload: bytes) -> None:
        """The transport handler: returns (acknowledging the message) once the event is stored."""
        done = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((topic, payload, done))
        self._receiving += 1
        self._idle.clear()
        try:
            await done
        finally:
            self._receiving -= 1
            if not self._receiving:
                self._idle.set()

    async def _consume(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < self.options.batch_size and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            await self._process(batch)

    async def _process(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        self.metrics.delivered.inc(len(batch))
        events: dict[UUID, Event] = {}
        letters: list[DeadLetter] = []
        for topic, payload, _ in batch:
            decoded = decode(topic, payload, self.options.max_payload_bytes)
            if isinstance(decoded, Event):
                events.setdefault(decoded.id, decoded)
            else:
                letters.append(decoded)
        wanted = [(event, bool(self.matching(event.topic))) for event in events.values()]
        accepted = await self._persist(wanted, letters)
        for _, _, done in batch:
            if not done.done():
                done.set_result(None)
        by_subject: dict[str, list[Event]] = {}
        for event in accepted:
            by_subject.setdefault(event.subject_id or str(event.id), []).append(event)
        for key, events_of_subject in by_subject.items():
            await self._dispatch(key, events_of_subject)

    async def _persist(self, wanted: list[tuple[Event, bool]], letters: list[DeadLetter]) -> list[Event]:
        """Store events and dead letters in one transaction, retrying until the database answers (the
        messages stay unacknowledged meanwhile, which holds the broker back)."""
        delay = 0.1
        while True:
            completed, self._completed = self._completed, []  # recorded in the same commit
            try:
                accepted: list[Event] = []
                async with self.conn.begin() as conn:
                    if completed:
                        await self.store.complete(conn, completed)
                    if wanted:
                        accepted = await self.store.accept(
                            conn, wanted, owner=self.owner, lease_seconds=self.options.lease_seconds
                        )
                        await self.outbox.mark_delivered(conn, [event.id for event, _ in wanted])
                    if letters:
                        await self.store.dead_letter(conn, letters)
                break
            except Exception as exc:
                self._completed[:0] = completed
                log.warning("bus.store_failed", error=str(exc) or type(exc).__name__, retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)
        for letter in letters:
            self.metrics.dead_lettered.labels(letter.reason).inc()
        if wanted:
            self.outbox.delivered()
        return accepted

    # -- handling ---------------------------------------------------------------------------------
    async def _dispatch(self, key: str, events: list[Event]) -> None:
        """Handle ``events`` of one subject in order, after the ones of that subject before them."""
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(self._handle(events, self._chains.get(key)))
        self._chains[key] = task
        self._handling.add(task)
        task.add_done_callback(partial(self._handled, key))

    def _handled(self, key: str, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        self._slots.release()
        if self._chains.get(key) is task:
            del self._chains[key]

    async def _handle(self, events: list[Event], previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            try:
                await previous
            except asyncio.CancelledError:
                if not previous.cancelled():
                    raise  # this task itself is being cancelled
        for event in events:
            failing: list[tuple[BoundHandler, str, str]] = []
            for handler in self.matching(event.topic):
                failure = await self.attempt(handler, event)
                if failure is not None:
                    failing.append((handler, *failure))
            if not failing:
                self._complete(event.id)
                continue
            task = asyncio.get_running_loop().create_task(self._retry(event, failing))
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)

    async def attempt(self, handler: BoundHandler, event: Event) -> tuple[str, str] | None:
        """Run ``handler`` once on ``event``; ``None`` on success, else ``(error, traceback)``."""
        tokens = structlog.contextvars.bind_contextvars(trace_id=event.trace_id, event_id=str(event.id))
        try:
            async with asyncio.timeout(self.options.timeout_seconds):
                await handler.run(event)
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                error = f"timed out after {self.options.timeout_seconds}s"
            else:
                error = f"{type(exc).__name__}: {exc}"
            self.metrics.handled.labels(handler.name, "failed").inc()
            log.warning("bus.handler_failed", handler=handler.name, event_type=event.type, error=error)
            return error[:2000], traceback.format_exc()[-20000:]
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        self.metrics.handled.labels(handler.name, "succeeded").inc()
        return None

    async def _retry(self, event: Event, failing: list[tuple[BoundHandler, str, str]]) -> None:
        async def keep_trying(handler: BoundHandler, error: str, trace: str) -> DeadLetter | None:
            attempts = 1
            while attempts < self.options.attempts:
                await asyncio.sleep(self.options.backoff(attempts))
                attempts += 1
                self.metrics.retried.labels(handler.name).inc()
                failure = await self.attempt(handler, event)
                if failure is None:
                    return None
                error, trace = failure
            return DeadLetter(HANDLER_FAILED, event.topic, error, event, event.id, handler.name, trace, attempts)

        results = await asyncio.gather(*(keep_trying(*failure) for failure in failing))
        letters = [letter for letter in results if letter is not None]
        if letters:
            await self._persist([], letters)
        self._complete(event.id)

    def _complete(self, event_id: UUID) -> None:
        self._completed.append(event_id)
        self._completion.set()

    async def _complete_loop(self) -> None:
        """Record completions that no batch transaction took along within a moment."""
        while True:
            await self._completion.wait()
            await asyncio.sleep(COMPLETION_DELAY_SECONDS)
            self._completion.clear()
            ids, self._completed = self._completed, []
            delay = 0.1
            while ids:
                try:
                    async with self.conn.begin() as conn:
                        await self.store.complete(conn, ids)
                    ids = []
                except Exception as exc:
                    log.warning("bus.store_failed", error=str(exc) or type(exc).__name__, retry_in=round(delay, 2))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)

    async def _reclaim_loop(self) -> None:
        interval = max(1.0, min(self.options.lease_seconds / 4, 60.0))
        while True:
            await asyncio.sleep(interval)
            try:
                async with self.conn.begin() as conn:
                    events = await self.store.reclaim(
                        conn, owner=self.owner, lease_seconds=self.options.lease_seconds, limit=100
                    )
            except Exception as exc:
                log.warning("bus.reclaim_failed", error=str(exc) or type(exc).__name__)
                continue
            for event in events:
                log.info("bus.reclaimed", event_id=str(event.id), event_type=event.type)
                await self._dispatch(event.subject_id or str(event.id), [event])

    # -- replay -----------------------------------------------------------------------------------
    async def run_handler(self, name: str, event: Event) -> None:
        """Run handler ``name`` once on ``event``; raise :class:`HandlerFailed` if it fails and
        ``LookupError`` if no running plugin registered it."""
        handler = self.handler(name)
        if handler is None:
            raise LookupError(name)
        failure = await self.attempt(handler, event)
        if failure is not None:
            raise HandlerFailed(name, *failure)

    async def resubmit(self, topic: str, payload: bytes) -> Event:
        """Process a dead-lettered message again (after an upgrade, say): store it and run each
        handler once, dead-lettering those that fail. Raise :class:`Unprocessable` if the message is
        still unusable."""
        decoded = decode(topic, payload, self.options.max_payload_bytes)
        if not isinstance(decoded, Event):
            raise Unprocessable(decoded)
        handlers = self.matching(decoded.topic)
        if await self._persist([(decoded, bool(handlers))], []):
            letters = []
            for handler in handlers:
                failure = await self.attempt(handler, decoded)
                if failure is not None:
                    error, trace = failure
                    letters.append(
                        DeadLetter(HANDLER_FAILED, decoded.topic, error, decoded, decoded.id, handler.name, trace, 1)
                    )
            async with self.conn.begin() as conn:
                if letters:
                    await self.store.dead_letter(conn, letters)
                await self.store.complete(conn, [decoded.id])
        return decoded
