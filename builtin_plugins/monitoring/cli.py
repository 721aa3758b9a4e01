"""``taylordash retention list|set|run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from builtin_plugins.monitoring.retention import RetentionService

T = TypeVar("T")


def _with_retention(action: Callable[[RetentionService], Awaitable[T]]) -> T:
    from kernel.app import Kernel
    from kernel.settings import load_settings

    async def main() -> T:
        kernel = Kernel(load_settings())
        try:
            await kernel.prepare_schema()
            service = RetentionService(kernel.db, None)
            await service.ensure_defaults()
            return await action(service)
        finally:
            await kernel.db.dispose()

    return asyncio.run(main())


def _policy(row: Any) -> dict[str, Any]:
    return {
        "table": row.table_name,
        "max_age_days": row.max_age_days,
        "enabled": row.enabled,
        "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
        "last_deleted": row.last_deleted,
    }


@click.group()
def retention() -> None:
    """How long logs, samples and other monitored tables keep their rows."""


@retention.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def retention_list(as_json: bool) -> None:
    """Show every retention policy and its last cleanup."""
    policies = [_policy(p) for p in _with_retention(lambda r: r.policies())]
    if as_json:
        click.echo(json.dumps(policies))
        return
    for p in policies:
        state = "enabled" if p["enabled"] else "disabled"
        last = f"last run {p['last_run_at']} deleted {p['last_deleted']}" if p["last_run_at"] else "never run"
        click.echo(f"{p['table']}\t{p['max_age_days']} days\t{state}\t{last}")


@retention.command("set")
@click.argument("table")
@click.option("--days", type=click.IntRange(1, 36500), required=True, help="Keep rows this many days")
@click.option("--enable/--disable", default=True, show_default=True, help="Whether cleanup enforces the policy")
def retention_set(table: str, days: int, enable: bool) -> None:
    """Create or change the policy of TABLE."""
    from kernel.errors import NotFound

    try:
        policy = _with_retention(lambda r: r.set_policy(table, days, enable))
    except NotFound as exc:
        raise click.BadParameter(str(exc.detail), param_hint="TABLE") from None
    click.echo(f"{policy.table_name}: {policy.max_age_days} days, {'enabled' if policy.enabled else 'disabled'}")


@retention.command("run")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def retention_run(as_json: bool) -> None:
    """Delete every row an enabled policy says has expired, now."""
    results = _with_retention(lambda r: r.run())
    rows = [{"table": r.table, "cutoff": r.cutoff.isoformat(), "deleted": r.deleted} for r in results]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['table']}: deleted {row['deleted']} rows older than {row['cutoff']}")


COMMANDS = [retention]
