"""HTTP layer of the events plugin: the mirror, its live stream and the dead-letter queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.responses import StreamingResponse

from builtin_plugins.events.queries import ADMIN_ONLY_TOPICS
from builtin_plugins.events.schemas import (
    DeadLetterOut,
    DeadLetterPage,
    DeadLetterQuery,
    EventOut,
    EventPage,
    EventQuery,
    ReplayFilter,
    ReplayOut,
    ReplaySummary,
    StreamQuery,
)
from builtin_plugins.events.service import EventsService, event_out
from kernel.bus import matches
from sdk import BadRequest, NotFound, RequestContext, Route

READ, ADMIN = "events:read", "events:admin"
BACKLOG_MAX = 10_000


def _service(ctx: RequestContext) -> EventsService:
    return ctx.kernel.services["events"]


def _is_admin(ctx: RequestContext) -> bool:
    return ctx.principal is not None and ctx.kernel.permissions.allows(ctx.principal, ADMIN)


async def list_events(ctx: RequestContext) -> EventPage:
    return await _service(ctx).list_events(ctx.query, _is_admin(ctx))


async def get_event(ctx: RequestContext) -> EventOut:
    found = await _service(ctx).get_event(ctx.path_params["event_id"], _is_admin(ctx))
    if found is None:
        raise NotFound(f"no event with id {ctx.path_params['event_id']}")
    return found


def _resume_point(ctx: RequestContext) -> int | None:
    header = ctx.request.headers.get("last-event-id")
    if header is None:
        return ctx.query.last_event_id
    if not header.strip().isdigit() or int(header) > 2**63 - 1:  # ids are 64-bit
        raise BadRequest("Last-Event-ID must be an id this stream sent (a number)", slug="invalid-last-event-id")
    return int(header)


def _frame(row: Mapping[str, Any]) -> bytes:
    data = event_out(row, row["handled"]).model_dump_json()
    return f"id: {row['seq']}\ndata: {data}\n\n".encode()


async def stream_events(ctx: RequestContext) -> StreamingResponse:
    """Server-sent events: every event mirrored from now on (after ``Last-Event-ID`` when resuming)
    that the caller may see and the filters select, with a comment line as heartbeat."""
    service = _service(ctx)
    query: StreamQuery = ctx.query
    after = _resume_point(ctx)
    admin = _is_admin(ctx)
    heartbeat = ctx.kernel.plugin_config("events").heartbeat_seconds

    def wanted(row: Mapping[str, Any]) -> bool:
        topic = row["topic"]
        if not admin and matches(ADMIN_ONLY_TOPICS, topic):
            return False
        if query.topic and not matches(query.topic, topic):
            return False
        return not query.type or row["type"] == query.type

    listener = await service.live.attach()

    async def frames() -> AsyncIterator[bytes]:
        sent: set[int] = set()
        try:
            yield b"retry: 3000\n\n"
            position = after
            while position is not None and len(sent) < BACKLOG_MAX:
                backlog = await service.mirror_after(position, 500)
                for row in backlog:
                    sent.add(row["seq"])
                    if wanted(row):
                        yield _frame(row)
                if len(backlog) < 500:
                    break
                position = backlog[-1]["seq"]
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        row = await listener.queue.get()
                except TimeoutError:
                    if listener.dropped:
                        return
                    yield b": heartbeat\n\n"
                    continue
                if row is None:
                    return
                if row["seq"] not in sent and wanted(row):
                    yield _frame(row)
        finally:
            service.live.detach(listener)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def list_letters(ctx: RequestContext) -> DeadLetterPage:
    return await _service(ctx).list_letters(ctx.query)


async def get_letter(ctx: RequestContext) -> DeadLetterOut:
    found = await _service(ctx).get_letter(ctx.path_params["letter_id"])
    if found is None:
        raise NotFound(f"no dead letter with id {ctx.path_params['letter_id']}")
    return found


async def replay_letter(ctx: RequestContext) -> ReplayOut:
    return await _service(ctx).replay(ctx.path_params["letter_id"], ctx.principal)


async def replay_letters(ctx: RequestContext) -> ReplaySummary:
    return await _service(ctx).replay_matching(ctx.body, ctx.principal)


async def discard_letter(ctx: RequestContext) -> None:
    await _service(ctx).discard(ctx.path_params["letter_id"], ctx.principal)


TAGS = ("events",)
ROUTES = [
    Route(
        "/api/v1/events",
        list_events,
        permission=READ,
        query=EventQuery,
        response=EventPage,
        summary="List mirrored events, newest first",
        tags=TAGS,
        problems={400: "Invalid cursor"},
        name="events_list",
    ),
    Route(
        "/api/v1/events/stream",
        stream_events,
        permission=READ,
        query=StreamQuery,
        media_type="text/event-stream",
        summary="Live stream of events (server-sent events)",
        description="Each message's `id` is the event's `seq`; reconnect with `Last-Event-ID` to resume. "
        "A comment line is sent as heartbeat when no event arrives for a while. Events under "
        "tracker/events/auth/ are only streamed to holders of events:admin.",
        tags=TAGS,
        problems={400: "Invalid Last-Event-ID"},
        name="events_stream",
    ),
    Route(
        "/api/v1/events/{event_id:uuid}",
        get_event,
        permission=READ,
        response=EventOut,
        summary="Show one mirrored event",
        tags=TAGS,
        problems={404: "No such event"},
        name="events_get",
    ),
    Route(
        "/api/v1/dlq",
        list_letters,
        permission=READ,
        query=DeadLetterQuery,
        response=DeadLetterPage,
        summary="List the dead-letter queue, newest first",
        tags=TAGS,
        problems={400: "Invalid cursor"},
        name="dlq_list",
    ),
    Route(
        "/api/v1/dlq/replay",
        replay_letters,
        methods=("POST",),
        permission=ADMIN,
        body=ReplayFilter,
        response=ReplaySummary,
        summary="Replay the dead letters a filter selects (oldest first)",
        tags=TAGS,
        name="dlq_replay_matching",
    ),
    Route(
        "/api/v1/dlq/{letter_id:uuid}",
        get_letter,
        permission=READ,
        response=DeadLetterOut,
        summary="Show one dead letter",
        tags=TAGS,
        problems={404: "No such dead letter"},
        name="dlq_get",
    ),
    Route(
        "/api/v1/dlq/{letter_id:uuid}/replay",
        replay_letter,
        methods=("POST",),
        permission=ADMIN,
        response=ReplayOut,
        summary="Replay one dead letter: removed when it succeeds, updated when it fails again",
        tags=TAGS,
        problems={404: "No such dead letter", 409: "Its handler is not registered, or it cannot be replayed"},
        name="dlq_replay",
    ),
    Route(
        "/api/v1/dlq/{letter_id:uuid}",
        discard_letter,
        methods=("DELETE",),
        permission=ADMIN,
        status_code=204,
        summary="Discard one dead letter",
        tags=TAGS,
        problems={404: "No such dead letter"},
        name="dlq_discard",
    ),
]
