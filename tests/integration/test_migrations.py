"""Migrations up and down, per plugin branch, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect
from sqlmodel import SQLModel

import tests.support.sample_plugin as sample_plugin
from kernel.app import Kernel
from kernel.errors import StartupError
from kernel.settings import Settings


async def table_names(kernel: Kernel) -> set[str]:
    async with kernel.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


@pytest.fixture
def fresh_settings(make_settings: Callable[..., Settings], fresh_database_url: str) -> Settings:
    return make_settings(database_url=fresh_database_url, migrate_on_start=None)


async def test_all_branches_up_down_and_up_again(fresh_settings: Settings):
    kernel = Kernel(fresh_settings, [("sample", sample_plugin)])
    migrator = kernel.migrator()
    try:
        assert await migrator.current() == set()
        assert {"kernel_0001", "sample_0002"} <= set(await migrator.pending())
        await migrator.upgrade()
        assert await migrator.pending() == []
        assert "sample_0002" in await migrator.current()
        assert {"plugin_state", "sample_notes", "alembic_version"} <= await table_names(kernel)
        await migrator.downgrade("base")
        assert await migrator.current() == set()
        assert await table_names(kernel) <= {"alembic_version"}
        await migrator.upgrade()
        assert await migrator.pending() == []
    finally:
        await kernel.db.dispose()


async def test_one_plugin_branch_moves_alone(fresh_settings: Settings):
    kernel = Kernel(fresh_settings, [("sample", sample_plugin)])
    migrator = kernel.migrator()
    try:
        await migrator.upgrade()
        await migrator.downgrade("sample@-1")
        assert "sample_0001" in await migrator.current()
        await migrator.downgrade("sample@base")
        tables = await table_names(kernel)
        assert "sample_notes" not in tables and "plugin_state" in tables
        assert "sample_0001" not in await migrator.current()
        assert await migrator.pending() == ["sample_0001", "sample_0002"]
        await migrator.upgrade("sample@head")
        assert "sample_notes" in await table_names(kernel)
    finally:
        await kernel.db.dispose()


def product_metadata() -> MetaData:
    """Every table the kernel and the builtin plugins declare as SQLModel classes."""
    metadata = MetaData()
    pending = list(SQLModel.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        table = getattr(cls, "__table__", None)
        if table is not None and cls.__module__.startswith(("kernel.", "builtin_plugins.")):
            if table.name not in metadata.tables:
                table.to_metadata(metadata)
    return metadata


async def test_models_agree_with_migrations(fresh_settings: Settings):
    kernel = Kernel(fresh_settings)
    try:
        await kernel.migrator().upgrade()
        metadata = product_metadata()
        assert "plugin_state" in metadata.tables

        def diff(connection) -> list:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with kernel.db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        # Tables owned by other branches (e.g. test plugins) are ignored: only missing/different ones count.
        relevant = [d for d in differences if not (d[0] == "remove_table" and d[1].name not in metadata.tables)]
        assert relevant == []
    finally:
        await kernel.db.dispose()


async def test_schema_behind_head(fresh_settings: Settings, backend: str):
    kernel = Kernel(fresh_settings)
    try:
        if backend == "sqlite":
            await kernel.prepare_schema()  # the embedded database migrates itself
        else:
            with pytest.raises(StartupError) as caught:
                await kernel.prepare_schema()
            message = str(caught.value)
            assert "behind head" in message and "taylordash db upgrade" in message and "--migrate" in message
            assert await kernel.migrator().current() == set()
            await kernel.prepare_schema(migrate=True)
        assert await kernel.migrator().pending() == []
    finally:
        await kernel.db.dispose()


async def test_unreachable_database_is_a_startup_error(make_settings: Callable[..., Settings]):
    settings = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    kernel = Kernel(settings)
    try:
        with pytest.raises(StartupError, match="cannot reach the database"):
            await kernel.prepare_schema()
    finally:
        await kernel.db.dispose()


async def test_migrations_of_a_removed_plugin_are_named(fresh_settings: Settings):
    with_sample = Kernel(fresh_settings, [("sample", sample_plugin)])
    try:
        await with_sample.migrator().upgrade()
    finally:
        await with_sample.db.dispose()
    without = Kernel(fresh_settings)
    try:
        with pytest.raises(StartupError) as caught:
            await without.prepare_schema()
        assert "sample_0002" in str(caught.value) and "db downgrade <plugin>@base" in str(caught.value)
    finally:
        await without.db.dispose()
