"""``taylordash events tail`` and ``taylordash dlq list|replay|discard``.

Exit codes: 0 success, 1 runtime failure (database unreachable, schema behind, a replay failed
again), 2 bad usage, 3 no such dead letter. Errors are one ``error:`` line on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import click

from builtin_plugins.events.schemas import DeadLetterQuery, EventOut, EventQuery, ReplayFilter
from builtin_plugins.events.service import EventsService, event_out
from kernel.cli import CommandError

T = TypeVar("T")
NOT_FOUND = 3
REASONS = click.Choice(["handler-failed", "malformed", "oversized", "unknown-schema-version"])


def _run(work: Callable[[Any, EventsService], Awaitable[T]], *, start_plugins: bool = False) -> T:
    """Run ``work(kernel, service)`` against the configured database (plugins started if asked)."""
    from kernel.app import Kernel
    from kernel.settings import load_settings

    async def main() -> T:
        kernel = Kernel(load_settings())
        try:
            if start_plugins:
                await kernel.start(serve_bus=False)
            else:
                await kernel.prepare_schema()
            return await work(kernel, EventsService(kernel))
        finally:
            await kernel.stop()

    return asyncio.run(main())


def _line(event: EventOut) -> str:
    actor = event.actor.id if event.actor else "-"
    when = event.occurred_at.isoformat().replace("+00:00", "Z")
    return f"{when}  {event.type:<28} subject={event.subject_id or '-'}  actor={actor}  id={event.id}"


@click.group("events")
def events() -> None:
    """Inspect the events mirrored from the bus."""


@events.command("tail")
@click.option("-n", "--lines", default=10, show_default=True, type=click.IntRange(0, 500), help="Events to show first")
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as they are mirrored (Ctrl-C stops)")
@click.option("--topic", help="MQTT topic filter, e.g. 'tracker/events/projects/#'")
@click.option("--type", "event_type", help="Exact event type, e.g. projects.created")
@click.option("--json", "as_json", is_flag=True, help="One JSON envelope per line")
def tail(lines: int, follow: bool, topic: str | None, event_type: str | None, as_json: bool) -> None:
    """Print the latest mirrored events, oldest first; with --follow, then every new one."""
    from pydantic import ValidationError

    from kernel.bus import matches

    try:
        query = EventQuery(limit=max(lines, 1), topic=topic, type=event_type)
    except ValidationError as exc:
        raise CommandError(f"--topic: {exc.errors()[0]['msg']}") from None

    def show(event: EventOut) -> None:
        click.echo(event.model_dump_json() if as_json else _line(event))

    async def work(kernel: Any, service: EventsService) -> None:
        listener = await service.live.attach() if follow else None
        if lines:
            for event in reversed((await service.list_events(query, admin=True)).items):
                show(event)
        while listener is not None:
            row = await listener.queue.get()
            if row is None:
                break
            if (not topic or matches(topic, row["topic"])) and (not event_type or row["type"] == event_type):
                show(event_out(row, row["handled"]))

    with contextlib.suppress(KeyboardInterrupt):
        _run(work)


@click.group("dlq")
def dlq() -> None:
    """The dead-letter queue: events a handler kept failing on, and unusable messages."""


def _selection(ids: tuple[str, ...], everything: bool, **filters: Any) -> ReplayFilter:
    if not ids and not everything:
        raise CommandError("name the entries (IDS) or pass --all to select by the filters")
    if ids and everything:
        raise CommandError("give either IDS or --all, not both")
    try:
        chosen = [UUID(value) for value in ids] if ids else None
    except ValueError:
        raise CommandError(f"not a dead-letter id: {next(v for v in ids if not _is_uuid(v))!r}") from None
    return ReplayFilter(ids=chosen, **{k: v for k, v in filters.items() if v is not None})


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


async def _require(service: EventsService, selection: ReplayFilter) -> list[UUID]:
    found = await service.select_letters(selection)
    missing = [i for i in selection.ids or [] if i not in found]
    if missing:
        raise CommandError(f"no dead letter with id {missing[0]}", exit_code=NOT_FOUND)
    return found


def _filters(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--handler", help="Handler name, e.g. projects.rollups"),
            click.option("--reason", type=REASONS),
            click.option("--topic", help="MQTT topic filter"),
        ]
    ):
        command = option(command)
    return command


@dlq.command("list")
@_filters
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output, as the API returns it")
def dlq_list(handler: str | None, reason: str | None, topic: str | None, limit: int, as_json: bool) -> None:
    """List dead letters, newest first."""
    query = DeadLetterQuery(handler=handler, reason=reason, topic=topic, limit=limit)
    page = _run(lambda kernel, service: service.list_letters(query))
    if as_json:
        click.echo(page.model_dump_json(indent=2))
        return
    if not page.items:
        click.echo("the dead-letter queue is empty")
    for item in page.items:
        error = item.error.splitlines()[0][:80] if item.error else ""
        when = item.created_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        click.echo(
            f"{item.id}  {when}  {item.reason:<22} {item.handler or '-':<30} x{item.attempts}  {item.topic}  {error}"
        )


@dlq.command("replay")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Replay every entry the filters select")
@_filters
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def dlq_replay(ids: tuple[str, ...], everything: bool, limit: int, as_json: bool, **filters: Any) -> None:
    """Run dead-lettered handlers again (oldest first). Entries that succeed are removed; exits 1
    when any fails again."""
    selection = _selection(ids, everything, limit=limit, **filters)

    async def work(kernel: Any, service: EventsService) -> Any:
        await _require(service, selection)
        return await service.replay_matching(selection)

    summary = _run(work, start_plugins=True)
    if as_json:
        click.echo(summary.model_dump_json(indent=2))
    else:
        for item in summary.items:
            click.echo(f"{item.status} {item.id}" + (f": {item.error}" if item.error else ""))
        click.echo(f"replayed {summary.replayed}, failed {summary.failed}")
    if summary.failed:
        raise SystemExit(1)


@dlq.command("discard")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Discard every entry the filters select")
@_filters
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def dlq_discard(ids: tuple[str, ...], everything: bool, limit: int, as_json: bool, **filters: Any) -> None:
    """Remove dead letters for good."""
    selection = _selection(ids, everything, limit=limit, **filters)

    async def work(kernel: Any, service: EventsService) -> int:
        await _require(service, selection)
        return await service.discard_matching(selection)

    count = _run(work)
    click.echo(json.dumps({"discarded": count}) if as_json else f"discarded {count}")


COMMANDS = [events, dlq]
