"""Checks every plugin's migration branch takes: up and down alone, and in agreement with its models."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, inspect

from kernel.app import Kernel
from kernel.settings import Settings


def table_of(difference: Any) -> str:
    """The table an Alembic difference is about (column changes come as lists of tuples)."""
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


async def check_branch_up_down_up(settings: Settings, branch: str, tables: set[str]) -> None:
    """Branch ``branch`` creates exactly ``tables`` and moves up and down on its own."""
    kernel = Kernel(settings)
    migrator = kernel.migrator()
    try:
        await migrator.upgrade()
        assert any(revision.startswith(f"{branch}_") for revision in await migrator.current())
        assert tables <= await table_names(kernel)
        await migrator.downgrade(f"{branch}@base")
        assert not tables & await table_names(kernel)
        assert "plugin_state" in await table_names(kernel)
        await migrator.upgrade(f"{branch}@head")
        assert tables <= await table_names(kernel)
        await migrator.downgrade("base")
        assert not tables & await table_names(kernel)
        await migrator.upgrade()
        assert await migrator.pending() == []
    finally:
        await kernel.db.dispose()


async def check_models_match_migrations(settings: Settings, models: Iterable[Any], tables: set[str]) -> None:
    """After upgrading, Alembic finds no difference between ``models`` and the database."""
    kernel = Kernel(settings)
    try:
        await kernel.migrator().upgrade()
        metadata = MetaData()
        for model in models:
            model.__table__.to_metadata(metadata)

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with kernel.db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert [d for d in differences if table_of(d) in tables] == []
        assert metadata.tables.keys() == tables
    finally:
        await kernel.db.dispose()
