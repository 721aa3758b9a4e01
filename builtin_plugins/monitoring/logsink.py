"""Structured logs into ``application_logs``: a logging handler that only appends to a bounded
in-memory queue (a request never waits for the database) and a background writer that drains the
queue in batches, one transaction per batch."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from uuid_utils.compat import uuid7

from builtin_plugins.monitoring.metrics import MonitoringMetrics
from builtin_plugins.monitoring.models import ApplicationLog, LogStreamEntry
from kernel.db import Database

Line = tuple[float, str, str, str, str | None, str | None, dict[str, Any]]
_writing: contextvars.ContextVar[bool] = contextvars.ContextVar("taylordash_log_writer", default=False)
_STRUCTLOG_META = ("event", "level", "logger", "timestamp", "trace_id", "request_id", "_record", "_from_structlog")
_SCALARS = (str, int, float, bool, type(None))
console = structlog.get_logger("taylordash.monitoring")


def service_of(logger_name: str) -> str:
    """The component a logger belongs to: ``taylordash.storage.backup`` → ``storage``,
    ``uvicorn.error`` → ``uvicorn``."""
    parts = logger_name.split(".")
    if parts[0] == "taylordash" and len(parts) > 1:
        return parts[1][:100]
    return parts[0][:100] or "root"


def _json_safe(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    return str(value)


LOG_COLUMNS = ("id", "ts", "level", "service", "logger", "message", "trace_id", "request_id", "instance", "context")


async def _copy(conn: AsyncConnection, logs: list[dict[str, Any]], feed: list[dict[str, Any]]) -> None:
    """PostgreSQL: binary COPY on the transaction's own connection, several times cheaper per row
    than a multi-row INSERT (the log writer shares the event loop with the requests)."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    records = [tuple(json.dumps(row[c]) if c == "context" else row[c] for c in LOG_COLUMNS) for row in logs]
    await driver.copy_records_to_table("application_logs", records=records, columns=LOG_COLUMNS)
    await driver.copy_records_to_table(
        "log_stream", records=[(r["log_id"], r["created_at"]) for r in feed], columns=("log_id", "created_at")
    )


class DatabaseLogHandler(logging.Handler):
    """Hands each record to the writer's queue; never blocks, never touches the database."""

    def __init__(self, writer: LogWriter, level: int) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        if _writing.get():
            return
        message = record.msg
        if isinstance(message, dict):  # a structlog event dict (ProcessorFormatter.wrap_for_formatter)
            context = {k: v for k, v in message.items() if k not in _STRUCTLOG_META}
            text = str(message.get("event", ""))
            trace_id, request_id = message.get("trace_id"), message.get("request_id")
        else:
            bound = structlog.contextvars.get_contextvars()
            text = record.getMessage()
            trace_id, request_id = bound.get("trace_id"), bound.get("request_id")
            context = {"exception": logging.Formatter().formatException(record.exc_info)} if record.exc_info else {}
        self.writer.offer((record.created, record.levelname.lower(), record.name, text, trace_id, request_id, context))


class LogWriter:
    """The queue and the task draining it into the database."""

    def __init__(
        self,
        db: Database,
        metrics: MonitoringMetrics,
        instance: str,
        *,
        queue_size: int,
        batch_size: int,
        flush_seconds: float,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.instance = instance
        self.queue: deque[Line] = deque()
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.written = self.dropped = self.failed_batches = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def offer(self, line: Line) -> None:
        """Queue one line (any thread); drop it, counted, when the queue is full."""
        queued = len(self.queue)
        if queued >= self.queue_size:
            self.dropped += 1
            self.metrics.logs_dropped.inc()
            return
        self.queue.append(line)
        loop = self._loop
        if queued + 1 == self.batch_size and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="taylordash-log-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> int:
        """Write every queued line now; returns how many were written."""
        total = 0
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            total += await self._write(batch)
        self.metrics.log_queue.set(len(self.queue))
        return total

    async def _write(self, batch: list[Line]) -> int:
        logs, feed = [], []
        now = datetime.now(UTC)
        for created, level, logger, text, trace_id, request_id, context in batch:
            log_id = uuid7()
            logs.append(
                {
                    "id": log_id,
                    "ts": datetime.fromtimestamp(created, UTC),
                    "level": level[:10],
                    "service": service_of(logger),
                    "logger": logger[:200],
                    "message": text,
                    "trace_id": str(trace_id)[:64] if trace_id else None,
                    "request_id": str(request_id)[:128] if request_id else None,
                    "instance": self.instance,
                    "context": _json_safe(context),
                }
            )
            feed.append({"log_id": log_id, "created_at": now})
        token = _writing.set(True)
        started = time.perf_counter()
        committing = False
        try:
            async with self.db.engine.connect() as conn:
                transaction = await conn.begin()
                if self.db.is_sqlite:
                    await conn.execute(insert(ApplicationLog.__table__), logs)
                    await conn.execute(insert(LogStreamEntry.__table__), feed)
                else:
                    await _copy(conn, logs, feed)
                # Counted before the commit is sent, so a reader never sees more stored lines than
                # ``written`` says, even while this coroutine waits for the commit's answer.
                self.written += len(batch)
                committing = True
                await transaction.commit()
        except Exception as exc:
            if committing:
                self.written -= len(batch)
            self.failed_batches += 1
            self.metrics.log_write_errors.inc()
            console.warning("logs.write_failed", lines=len(batch), error=repr(exc))
            return 0
        finally:
            _writing.reset(token)
        self.metrics.log_flush.observe(time.perf_counter() - started)
        self.metrics.logs_written.inc(len(batch))
        return len(batch)

    def stats(self) -> dict[str, int]:
        """This instance's writer counters."""
        return {
            "queued": len(self.queue),
            "written": self.written,
            "dropped": self.dropped,
            "failed_batches": self.failed_batches,
        }
