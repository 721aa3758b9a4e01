"""HTTP layer of monitoring: /metrics, logs (list, live stream, stats), system samples, retention."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator
from starlette.responses import Response, StreamingResponse

from builtin_plugins.monitoring.logs import LogFilter
from builtin_plugins.monitoring.models import RetentionPolicy
from builtin_plugins.monitoring.service import MonitoringService
from kernel.errors import BadRequest
from sdk import Page, PageQuery, RequestContext, Route

Level = Literal["debug", "info", "warning", "error", "critical"]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _service(ctx: RequestContext) -> MonitoringService:
    return ctx.kernel.services["monitoring"]


def _as_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


class LogFilters(BaseModel):
    """Filters of the log endpoints. ``level`` may repeat or be comma-separated."""

    level: list[Level] = Field(default_factory=list, description="Only these levels")
    min_level: Level | None = Field(None, description="Only this level and more severe ones")
    service: str | None = Field(None, max_length=100, description="Component, e.g. access, auth, storage, uvicorn")
    trace_id: str | None = Field(None, max_length=64)
    request_id: str | None = Field(None, max_length=128)
    q: str | None = Field(None, max_length=200, description="Text the message contains (case-insensitive)")

    _levels = field_validator("level", mode="before")(_as_list)

    def to_filter(self, since: datetime | None = None, until: datetime | None = None) -> LogFilter:
        return LogFilter(
            levels=tuple(self.level),
            min_level=self.min_level,
            service=self.service,
            trace_id=self.trace_id,
            request_id=self.request_id,
            since=since,
            until=until,
            text=self.q,
        )


class LogQuery(PageQuery, LogFilters):
    """Filters, time window and cursor of ``GET /api/v1/logs``."""

    since: AwareDatetime | None = Field(None, description="Lines at or after this time (RFC 3339)")
    until: AwareDatetime | None = Field(None, description="Lines before this time (RFC 3339)")


class StreamQuery(LogFilters):
    """Filters of the live stream; ``max_events`` ends the stream after that many lines."""

    max_events: int | None = Field(None, ge=1, le=100_000)


class StatsQuery(BaseModel):
    """Window of ``GET /api/v1/logs/stats`` (default: the last 24 hours)."""

    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class LogLine(BaseModel):
    """One stored log line."""

    id: str
    ts: datetime
    level: str
    service: str
    logger: str
    message: str
    trace_id: str | None
    request_id: str | None
    instance: str
    context: dict[str, Any]


class WriterStats(BaseModel):
    """This instance's database log writer."""

    queued: int
    written: int
    dropped: int
    failed_batches: int


class LogStats(BaseModel):
    """Line counts in a window, by level and by service."""

    since: datetime
    until: datetime
    total: int
    by_level: dict[str, int]
    by_service: dict[str, int]
    writer: WriterStats | None


class SampleQuery(PageQuery):
    """Filters of ``GET /api/v1/metrics/system``."""

    name: str | None = Field(None, max_length=100, description="e.g. system.cpu_percent")
    instance: str | None = Field(None, max_length=100)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


class Sample(BaseModel):
    """One stored system metric value."""

    id: str
    recorded_at: datetime
    instance: str
    name: str
    value: float


class PolicyOut(BaseModel):
    """A retention policy and what its last cleanup did."""

    table_name: str
    max_age_days: int
    enabled: bool
    updated_at: datetime
    last_run_at: datetime | None
    last_deleted: int

    @classmethod
    def of(cls, row: RetentionPolicy) -> PolicyOut:
        return cls.model_validate(row, from_attributes=True)


class PolicyIn(BaseModel):
    """New settings of a retention policy."""

    max_age_days: int = Field(ge=1, le=36500, description="Rows older than this many days are deleted")
    enabled: bool = True


class CleanupOut(BaseModel):
    """Rows one cleanup deleted from one table."""

    table: str
    cutoff: datetime
    deleted: int


class CleanupRun(BaseModel):
    """The result of running every enabled retention policy."""

    ran_at: datetime
    results: list[CleanupOut]


async def metrics(ctx: RequestContext) -> Response:
    return Response(await _service(ctx).scrape(), media_type=PROMETHEUS_TEXT)


async def list_logs(ctx: RequestContext) -> Page[LogLine]:
    query: LogQuery = ctx.query
    items, next_cursor = await _service(ctx).reader.page(
        query.to_filter(query.since, query.until), query.limit, query.cursor
    )
    return Page[LogLine](items=[LogLine(**item) for item in items], next_cursor=next_cursor)


def _sse(seq: int, line: dict[str, Any]) -> bytes:
    return f"id: {seq}\nevent: log\ndata: {json.dumps(line, separators=(',', ':'))}\n\n".encode()


async def stream_logs(ctx: RequestContext) -> StreamingResponse:
    service = _service(ctx)
    query: StreamQuery = ctx.query
    last = ctx.request.headers.get("last-event-id")
    if last is not None and not last.isdigit():
        raise BadRequest("Last-Event-ID must be an id this stream sent", slug="invalid-last-event-id")
    after = int(last) if last is not None else None
    settings = service.settings
    feed = service.reader.follow(query.to_filter(), after, settings.stream_poll_seconds)

    async def events() -> AsyncIterator[bytes]:
        yield f"retry: {int(settings.stream_poll_seconds * 3000)}\n\n".encode()
        sent = 0
        iterator = feed.__aiter__()
        pending: asyncio.Task[Any] | None = None
        try:
            while query.max_events is None or sent < query.max_events:
                pending = pending or asyncio.ensure_future(iterator.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=settings.stream_heartbeat_seconds)
                if not done:
                    yield b": keep-alive\n\n"
                    continue
                seq, line = pending.result()
                pending = None
                sent += 1
                yield _sse(seq, line)
        finally:
            if pending is not None:
                # The generator cannot be closed while the cancelled ``__anext__`` still runs it.
                pending.cancel()
                await asyncio.wait({pending})
            await iterator.aclose()

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def log_stats(ctx: RequestContext) -> LogStats:
    service = _service(ctx)
    until = ctx.query.until or datetime.now(UTC)
    since = ctx.query.since or until - timedelta(hours=24)
    counts = await service.reader.stats(LogFilter(since=since, until=until))
    writer = WriterStats(**service.writer.stats()) if service.writer is not None else None
    return LogStats(since=since, until=until, writer=writer, **counts)


async def list_samples(ctx: RequestContext) -> Page[Sample]:
    q: SampleQuery = ctx.query
    items, next_cursor = await _service(ctx).reader.samples(q.limit, q.cursor, q.name, q.instance, q.since, q.until)
    return Page[Sample](items=[Sample(**item) for item in items], next_cursor=next_cursor)


async def list_policies(ctx: RequestContext) -> Page[PolicyOut]:
    return Page[PolicyOut](items=[PolicyOut.of(p) for p in await _service(ctx).retention.policies()])


async def set_policy(ctx: RequestContext) -> PolicyOut:
    body: PolicyIn = ctx.body
    policy = await _service(ctx).retention.set_policy(ctx.path_params["table"], body.max_age_days, body.enabled)
    return PolicyOut.of(policy)


async def run_retention(ctx: RequestContext) -> CleanupRun:
    ran_at = datetime.now(UTC)
    results = await _service(ctx).retention.run(ran_at)
    return CleanupRun(
        ran_at=ran_at, results=[CleanupOut(table=r.table, cutoff=r.cutoff, deleted=r.deleted) for r in results]
    )


ROUTES = [
    Route(
        "/metrics",
        metrics,
        permission="metrics:read",
        media_type=PROMETHEUS_TEXT,
        summary="Prometheus metrics",
        description="Admins, or Prometheus with `Authorization: Bearer <scrape token>` (monitoring setting "
        "`scrape_token`). Every metric is prefixed `taylordash_`.",
        tags=("monitoring",),
        name="metrics",
    ),
    Route(
        "/api/v1/logs",
        list_logs,
        permission="logs:read",
        query=LogQuery,
        response=Page[LogLine],
        summary="Search stored logs, newest first",
        tags=("logs",),
        problems={400: "Invalid cursor"},
        name="logs_list",
    ),
    Route(
        "/api/v1/logs/stream",
        stream_logs,
        permission="logs:read",
        query=StreamQuery,
        media_type="text/event-stream",
        summary="Follow logs live (server-sent events)",
        description="Each line is an `event: log` whose `id` can be sent back as `Last-Event-ID` to resume.",
        tags=("logs",),
        problems={400: "Invalid Last-Event-ID"},
        name="logs_stream",
    ),
    Route(
        "/api/v1/logs/stats",
        log_stats,
        permission="logs:read",
        query=StatsQuery,
        response=LogStats,
        summary="Log line counts by level and service",
        tags=("logs",),
        name="logs_stats",
    ),
    Route(
        "/api/v1/metrics/system",
        list_samples,
        permission="metrics:read",
        query=SampleQuery,
        response=Page[Sample],
        summary="Stored system metric samples, newest first",
        tags=("monitoring",),
        problems={400: "Invalid cursor"},
        name="system_metrics_list",
    ),
    Route(
        "/api/v1/retention",
        list_policies,
        permission="retention:read",
        response=Page[PolicyOut],
        summary="Retention policies",
        tags=("retention",),
        name="retention_list",
    ),
    Route(
        "/api/v1/retention/{table}",
        set_policy,
        methods=("PUT",),
        permission="retention:write",
        body=PolicyIn,
        response=PolicyOut,
        summary="Create or change a table's retention policy",
        tags=("retention",),
        problems={404: "No retention target of that name"},
        name="retention_set",
    ),
    Route(
        "/api/v1/retention/run",
        run_retention,
        methods=("POST",),
        permission="retention:write",
        response=CleanupRun,
        summary="Enforce every enabled retention policy now",
        tags=("retention",),
        name="retention_run",
    ),
]
