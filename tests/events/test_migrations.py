"""The events tables: models agree with migrations, which go up and down, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from builtin_plugins.events.models import DeadLetterEntry, EventClaim, MirroredEvent
from kernel.app import Kernel
from kernel.models import OutboxRow
from tests.events.conftest import EVENTS_ONLY

TABLES = {"events_mirror", "event_claims", "dlq_events", "event_outbox"}


async def _tables(kernel: Kernel) -> set[str]:
    async with kernel.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_models_agree_with_migrations_and_go_down_and_up(make_settings, fresh_database_url):
    kernel = Kernel(make_settings(database_url=fresh_database_url), builtins=EVENTS_ONLY)
    migrator = kernel.migrator()
    try:
        await migrator.upgrade()
        assert TABLES <= await _tables(kernel)
        metadata = MetaData()
        for model in (MirroredEvent, EventClaim, DeadLetterEntry, OutboxRow):
            model.__table__.to_metadata(metadata)

        def diff(connection) -> list:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return [d for d in compare_metadata(context, metadata) if not (d[0] == "remove_table")]

        async with kernel.db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []

        await migrator.downgrade("events@base")
        remaining = await _tables(kernel)
        assert "events_mirror" not in remaining and "dlq_events" not in remaining and "event_outbox" in remaining
        await migrator.downgrade("kernel_0001")
        assert "event_outbox" not in await _tables(kernel)
        assert await migrator.pending() == ["kernel_0002", "events_0001", "kernel_0003"]
        await migrator.upgrade()
        assert TABLES <= await _tables(kernel) and await migrator.pending() == []
    finally:
        await kernel.db.dispose()
