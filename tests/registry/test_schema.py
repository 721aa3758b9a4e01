"""The plugins migration branch: up and down on both backends, and in agreement with the models."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, inspect

from builtin_plugins.plugins.models import TABLES
from kernel.app import Kernel

REGISTRY_TABLES = {"plugins", "plugin_configurations", "plugin_api_access", "plugin_security_violations"}


def table_of(difference: Any) -> str:
    op = difference[0] if isinstance(difference, list) else difference
    subject = op[1]
    if isinstance(subject, Table):
        return subject.name
    if hasattr(subject, "table"):
        return subject.table.name
    return op[2]


async def table_names(kernel: Kernel) -> set[str]:
    async with kernel.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_plugins_branch_up_down_up(make_settings, fresh_database_url):
    kernel = Kernel(make_settings(database_url=fresh_database_url))
    migrator = kernel.migrator()
    try:
        await migrator.upgrade()
        assert "plugins_0001" in await migrator.current()
        assert REGISTRY_TABLES <= await table_names(kernel)
        await migrator.downgrade("plugins@base")
        assert not REGISTRY_TABLES & await table_names(kernel)
        assert "plugin_state" in await table_names(kernel)
        await migrator.upgrade("plugins@head")
        assert REGISTRY_TABLES <= await table_names(kernel)
        await migrator.downgrade("base")
        assert not REGISTRY_TABLES & await table_names(kernel)
        await migrator.upgrade()
        assert await migrator.pending() == []
    finally:
        await kernel.db.dispose()


async def test_models_agree_with_the_migration(make_settings, fresh_database_url):
    kernel = Kernel(make_settings(database_url=fresh_database_url))
    try:
        await kernel.migrator().upgrade()
        metadata = MetaData()
        for model in TABLES:
            model.__table__.to_metadata(metadata)

        def diff(connection) -> list:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with kernel.db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert [d for d in differences if table_of(d) in REGISTRY_TABLES] == []
        assert metadata.tables.keys() == REGISTRY_TABLES
    finally:
        await kernel.db.dispose()
