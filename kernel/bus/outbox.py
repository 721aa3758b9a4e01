"""The transactional outbox and the relay that publishes it.

``append`` adds an event to the caller's transaction, so the event exists exactly when the state
change it describes does. Rows are written in one statement when the session commits (a savepoint
that rolls back drops the events added inside it).

The relay takes pending rows in ``seq`` order, in batches (marking them sent), publishes them, waits
for the broker's acknowledgements and gives back the rows after the acknowledged prefix when the
connection fails. It keeps at most ``max_undelivered`` events
published but not yet stored by a consumer, so a slow consumer never overflows the broker's per-client
queue (brokers drop what does not fit). Instances never publish a row twice nor out of order; SQLite
is single-instance.

On PostgreSQL one relay at a time publishes: the one holding a session advisory lock on its own
connection (it dies with the connection, so a crashed leader is replaced within a poll interval). A
new leader publishes again what is still in the outbox, in order, before anything newer: a crashed
predecessor may have taken rows it never published.
The processor deletes the rows of the events it stored, in the transaction that stores them;
housekeeping queues again rows sent longer than ``redeliver_after_seconds`` ago and still there
(a broker or an instance lost them) and refreshes the lag gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy import Uuid, bindparam, delete, event, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel.ext.asyncio.session import AsyncSession

from kernel.bus.connection import DedicatedConnection
from kernel.bus.envelope import Event
from kernel.bus.metrics import BusMetrics
from kernel.bus.sql import any_of
from kernel.bus.transport import Transport, TransportError
from kernel.db import Database
from kernel.errors import PayloadTooLarge
from kernel.models import OutboxRow, utcnow

log = structlog.get_logger("taylordash.bus.relay")
OUTBOX = OutboxRow.__table__
RELAY_LOCK = 0x7464_6F75_7462_6F78  # "tdoutbox": one publishing relay at a time
CHANNEL = "taylordash_outbox"
_PENDING = "taylordash.bus.outbox"


class EventTooLarge(PayloadTooLarge):
    """An event's envelope is larger than ``bus_max_payload_bytes``."""

    slug = "event-too-large"


class Outbox:
    """Adds events to callers' transactions; removes them once a consumer stored them."""

    def __init__(self, db: Database, max_payload_bytes: int, wake_relay: Callable[[], None]) -> None:
        self.max_payload_bytes = max_payload_bytes
        self._wake_relay = wake_relay
        self._insert = insert(OUTBOX)
        # On PostgreSQL a statement trigger on the table (migration kernel_0003) sends the NOTIFY that
        # wakes relays of other processes at commit; this process's relay is woken after commit.
        self._delivered = delete(OUTBOX).where(any_of(OUTBOX.c.id, "ids", Uuid(), db.is_sqlite))

    async def append(self, session: AsyncSession, event_: Event) -> None:
        """Add ``event_`` to ``session``'s transaction; it is published after the caller commits."""
        body = event_.to_json()
        if len(body) > self.max_payload_bytes:
            raise EventTooLarge(
                f"event {event_.type} is {len(body)} bytes; "
                f"the limit is {self.max_payload_bytes} (TD_BUS_MAX_PAYLOAD_BYTES)"
            )
        transaction = session.sync_session.get_nested_transaction() or session.sync_session.get_transaction()
        row = {"id": event_.id, "topic": event_.topic, "body": body.decode(), "created_at": utcnow()}
        info = session.sync_session.info
        pending: _Pending | None = info.get(_PENDING)
        if pending is None:
            pending = info[_PENDING] = _Pending(self)
        pending.rows.append((transaction, row))

    def _write(self, session: Session, pending: _Pending) -> None:
        if pending.rows:
            session.connection().execute(self._insert, [row for _, row in pending.rows])
            pending.rows.clear()
            pending.written = True

    async def mark_delivered(self, conn: AsyncConnection, ids: Sequence[UUID]) -> None:
        """A consumer stored these events: their rows are done (ids from elsewhere are ignored)."""
        if ids:
            await conn.execute(self._delivered, {"ids": list(ids)})

    def delivered(self) -> None:
        """Tell the relay that consumers made room (called after ``mark_delivered`` committed)."""
        self._wake_relay()


@dataclass(slots=True)
class _Pending:
    """The events a session's transaction added, kept in ``session.info`` until it commits."""

    outbox: Outbox
    rows: list[tuple[SessionTransaction | None, dict[str, Any]]] = field(default_factory=list)
    written: bool = False


# One set of listeners on every Session, installed with this module: they act only on sessions
# that carry outbox rows (adding listeners per session would cost more than the insert).
@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None:
        pending.outbox._write(session, pending)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None and pending.written:
        pending.written = False
        pending.outbox._wake_relay()


@event.listens_for(Session, "after_soft_rollback")
def _after_soft_rollback(session: Session, rolled_back: SessionTransaction) -> None:
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None and pending.rows:
        pending.rows[:] = [(tx, row) for tx, row in pending.rows if not _within(tx, rolled_back)]


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@dataclass(frozen=True, slots=True)
class RelayOptions:
    """How the relay batches, polls, backs off and keeps house."""

    batch_size: int = 500
    max_undelivered: int = 1000
    poll_seconds: float = 0.25
    backoff_max_seconds: float = 30.0
    redeliver_after_seconds: float = 60.0
    housekeeping_seconds: float = 5.0


class Relay:
    """Publishes pending outbox rows through the transport."""

    def __init__(self, db: Database, transport: Transport, metrics: BusMetrics, options: RelayOptions) -> None:
        self.db = db
        self.conn = DedicatedConnection(db.engine)
        self.transport = transport
        self.metrics = metrics
        self.options = options
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._leading = 0  # generation of the connection holding the leader lock
        self._listening = 0  # generation of the connection listening for commits
        pending = select(OUTBOX.c.seq).where(OUTBOX.c.sent_at.is_(None)).order_by(OUTBOX.c.seq)
        self._take = (
            update(OUTBOX)
            .where(OUTBOX.c.seq.in_(pending.limit(bindparam("limit")).scalar_subquery()))
            .values(sent_at=bindparam("now"))
            .returning(OUTBOX.c.seq, OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.body)
        )
        self._undelivered = select(func.count()).where(OUTBOX.c.sent_at.is_not(None))
        self._unsend = update(OUTBOX).where(any_of(OUTBOX.c.id, "ids", Uuid(), db.is_sqlite)).values(sent_at=None)
        self._unsend_all = update(OUTBOX).where(OUTBOX.c.sent_at.is_not(None)).values(sent_at=None)

    def wake(self) -> None:
        """Look for pending rows now instead of at the next poll (called after commits)."""
        self._wake.set()

    async def start(self) -> None:
        """Start relaying and housekeeping."""
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._run(), name="bus-relay"),
                loop.create_task(self._keep_house(), name="bus-housekeeping"),
            ]

    async def flush(self, grace_seconds: float) -> None:
        """Let the running relay publish every pending row, for up to ``grace_seconds``: a clean
        shutdown leaves nothing in the outbox that the broker could have taken."""
        if not self._tasks or not self.transport.connected:
            return
        pending = select(func.count()).where(OUTBOX.c.sent_at.is_(None))
        with contextlib.suppress(TimeoutError, SQLAlchemyError, OSError):
            async with asyncio.timeout(grace_seconds):
                while True:
                    async with self.db.engine.connect() as conn:
                        if not await conn.scalar(pending):
                            return
                    self.wake()
                    await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop relaying and housekeeping; release the connection (and with it the leader lock)."""
        tasks, self._tasks = self._tasks, []
        await self.conn.cancel_between_transactions(tasks)
        await self.conn.close()

    async def _keep_house(self) -> None:
        """Housekeeping runs on its own, so the lag gauges stay true while the broker is down."""
        while True:
            try:
                await self.housekeeping()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("bus.housekeeping_failed", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(self.options.housekeeping_seconds)

    async def _run(self) -> None:
        delay = 0.2
        while True:
            await self.transport.wait_connected()
            self._wake.clear()
            try:
                sent = await self.relay_once()
            except (SQLAlchemyError, OSError, TransportError) as exc:
                log.warning("bus.relay_failed", error=str(exc) or type(exc).__name__, retry_in=round(delay, 2))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, self.options.backoff_max_seconds)
                continue
            delay = 0.2
            if sent == 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
                # arrives as the wait completes, and stopping the relay would then hang.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.poll_seconds):
                        await self._wake.wait()

    async def relay_once(self) -> int:
        """Publish one batch; return how many rows the broker acknowledged. The batch is marked sent
        before it is published (so a consumer storing an event never waits on the relay's lock);
        when the connection fails mid-batch the rows not acknowledged are given back, in order,
        and the transport's error is raised."""
        async with self.conn.begin() as conn:
            if not await self._lead(conn):
                return 0
            rows = await self._next_batch(conn)
        acked, error = await self._publish(rows)
        self.metrics.published.inc(acked)
        if acked < len(rows):
            async with self.conn.begin() as conn:
                await conn.execute(self._unsend, {"ids": [row.id for row in rows[acked:]]})
        if error is not None:
            raise error
        return acked

    @property
    def leading(self) -> bool:
        """Whether this relay is the one publishing."""
        return self._leading == self.conn.generation

    async def _lead(self, conn: AsyncConnection) -> bool:
        """Become the publishing relay if none is (on SQLite, the only one always is). A new
        leader first takes back the rows its predecessor took but may not have published (it may
        have crashed mid-batch), so they go out again, in order, before any later row."""
        if not self.db.is_sqlite and self._listening != self.conn.generation:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.add_listener(CHANNEL, lambda *_: self.wake())
            self._listening = self.conn.generation
        if self.leading:
            return True
        if self.db.is_sqlite or await conn.scalar(select(func.pg_try_advisory_lock(RELAY_LOCK))):
            self._leading = self.conn.generation
            taken_back = await conn.execute(self._unsend_all)
            log.info("bus.relay_leading", publishing_again=taken_back.rowcount)
        return self.leading

    async def _next_batch(self, conn: AsyncConnection) -> Sequence[Any]:
        room = self.options.max_undelivered - (await conn.scalar(self._undelivered) or 0)
        if room <= 0:
            return []
        limit = min(room, self.options.batch_size)
        rows = (await conn.execute(self._take, {"limit": limit, "now": utcnow()})).all()
        return sorted(rows, key=lambda row: row.seq)

    async def _publish(self, rows: Sequence[Any]) -> tuple[int, TransportError | None]:
        futures: list[asyncio.Future[None]] = []
        error: TransportError | None = None
        for row in rows:
            try:
                futures.append(await self.transport.send(row.topic, row.body.encode()))
            except TransportError as exc:
                error = exc
                break
        acked = 0
        for future in futures:  # mostly acknowledged by now: awaiting a done future costs nothing
            try:
                await future
            except TransportError as exc:
                error = error or exc
                break
            acked += 1
        for future in futures[acked:]:
            if future.done() and not future.cancelled():
                future.exception()  # the connection failed them all; nothing else to report
        return acked, error

    async def housekeeping(self) -> None:
        """Refresh the lag gauges and queue lost events again."""
        async with self.conn.begin() as conn:
            if not await self._lead(conn):
                return
            pending, oldest = (
                await conn.execute(
                    select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.sent_at.is_(None))
                )
            ).one()
            self.metrics.outbox_pending.set(pending)
            self.metrics.outbox_lag.set((utcnow() - _aware(oldest)).total_seconds() if oldest else 0)
            await self._redeliver(conn)

    async def _redeliver(self, conn: AsyncConnection) -> None:
        horizon = utcnow() - timedelta(seconds=self.options.redeliver_after_seconds)
        result = await conn.execute(update(OUTBOX).where(OUTBOX.c.sent_at < horizon).values(sent_at=None))
        if result.rowcount:
            self.metrics.redelivered.inc(result.rowcount)
            log.warning("bus.redelivering", events=result.rowcount, reason="published but not stored by a consumer")
            self.wake()


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every timestamp the bus writes is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
