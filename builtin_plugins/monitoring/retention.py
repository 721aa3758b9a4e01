"""Retention policies: how long each table's rows are kept, and the cleanup that enforces them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from builtin_plugins.monitoring.metrics import MonitoringMetrics
from builtin_plugins.monitoring.models import (
    DEFAULT_POLICIES,
    ApplicationLog,
    LogStreamEntry,
    RetentionPolicy,
    SystemMetric,
)
from kernel.db import Database
from kernel.errors import NotFound

log = structlog.get_logger("taylordash.monitoring.retention")


@dataclass(frozen=True, slots=True)
class Target:
    """A table retention can clean: rows whose ``column`` is older than the cutoff are deleted."""

    table: sa.Table
    column: sa.Column
    key: sa.Column


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What one cleanup did to one table."""

    table: str
    cutoff: datetime
    deleted: int


def _target(model: type, column: str, key: str) -> Target:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return Target(table, table.c[column], table.c[key])


class RetentionService:
    """Policies per table, kept in ``retention_policies``. Other plugins may add their tables with
    :meth:`register` (in their ``startup``) so operators manage every retention in one place."""

    def __init__(self, db: Database, metrics: MonitoringMetrics | None, batch_size: int = 5000) -> None:
        self.db = db
        self.metrics = metrics
        self.batch_size = batch_size
        self.targets: dict[str, Target] = {
            "application_logs": _target(ApplicationLog, "ts", "id"),
            "system_metrics": _target(SystemMetric, "recorded_at", "id"),
            "log_stream": _target(LogStreamEntry, "created_at", "seq"),
        }

    def register(self, table: sa.Table, time_column: str, key_column: str = "id") -> None:
        """Let operators set a retention policy for ``table`` (rows aged by ``time_column``)."""
        self.targets[table.name] = Target(table, table.c[time_column], table.c[key_column])

    def _require(self, table: str) -> Target:
        if table not in self.targets:
            known = ", ".join(sorted(self.targets))
            raise NotFound(f"no retention target {table!r} (known: {known})", slug="unknown-retention-table")
        return self.targets[table]

    async def ensure_defaults(self) -> None:
        """Create the default policy of each monitoring table that has none (idempotent; another
        instance creating the same row at the same moment is fine)."""
        existing = {p.table_name for p in await self.policies()}
        for table, days in DEFAULT_POLICIES.items():
            if table in existing:
                continue
            try:
                async with self.db.session() as session:
                    session.add(RetentionPolicy(table_name=table, max_age_days=days))
                    await session.commit()
            except IntegrityError:
                continue

    async def policies(self) -> list[RetentionPolicy]:
        """Every policy, by table name."""
        async with self.db.session() as session:
            rows = await session.exec(select(RetentionPolicy).order_by(RetentionPolicy.table_name))
            return list(rows.all())

    async def set_policy(self, table: str, max_age_days: int, enabled: bool = True) -> RetentionPolicy:
        """Create or change the policy of ``table`` (404 ``unknown-retention-table`` if it cannot be cleaned)."""
        self._require(table)
        async with self.db.session() as session:
            policy = await session.get(RetentionPolicy, table)
            if policy is None:
                policy = RetentionPolicy(table_name=table, max_age_days=max_age_days, enabled=enabled)
            else:
                policy.max_age_days, policy.enabled = max_age_days, enabled
                policy.updated_at = datetime.now(UTC)
            session.add(policy)
            await session.commit()
            await session.refresh(policy)
            return policy

    async def run(self, now: datetime | None = None) -> list[CleanupResult]:
        """Delete the rows every enabled policy says have expired (older than ``now`` minus the
        policy's age); record and count what was deleted."""
        now = now or datetime.now(UTC)
        results = []
        for policy in await self.policies():
            target = self.targets.get(policy.table_name)
            if not policy.enabled or target is None:
                continue
            cutoff = now - timedelta(days=policy.max_age_days)
            try:
                deleted = await self._delete_before(target, cutoff)
            except Exception:
                log.exception("retention.failed", table=policy.table_name)
                if self.metrics is not None:
                    self.metrics.retention_runs.labels(policy.table_name, "failed").inc()
                continue
            await self._record(policy.table_name, now, deleted)
            results.append(CleanupResult(policy.table_name, cutoff, deleted))
            log.info("retention.cleaned", table=policy.table_name, deleted=deleted, cutoff=cutoff.isoformat())
        return results

    async def _delete_before(self, target: Target, cutoff: datetime) -> int:
        expired = sa.select(target.key).where(target.column < cutoff).limit(self.batch_size)
        total = 0
        while True:
            async with self.db.engine.begin() as conn:
                result = await conn.execute(sa.delete(target.table).where(target.key.in_(expired.scalar_subquery())))
            total += max(result.rowcount or 0, 0)
            if (result.rowcount or 0) < self.batch_size:
                return total

    async def _record(self, table: str, now: datetime, deleted: int) -> None:
        async with self.db.session() as session:
            policy = await session.get(RetentionPolicy, table)
            if policy is not None:
                policy.last_run_at, policy.last_deleted = now, deleted
                session.add(policy)
                await session.commit()
        if self.metrics is not None:
            self.metrics.retention_deleted.labels(table).inc(deleted)
            self.metrics.retention_runs.labels(table, "ok").inc()
            self.metrics.retention_last_run.labels(table).set(time.time())
