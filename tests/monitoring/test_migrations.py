"""The monitoring and storage migration branches: up, down, up again, and in step with the models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from builtin_plugins.monitoring.models import TABLES as MONITORING_TABLES
from builtin_plugins.storage.models import TABLES as STORAGE_TABLES
from kernel.app import Kernel
from kernel.settings import Settings

BRANCHES = {"monitoring": MONITORING_TABLES, "storage": STORAGE_TABLES}


@pytest.fixture
def fresh_settings(make_settings: Callable[..., Settings], fresh_database_url: str) -> Settings:
    return make_settings(database_url=fresh_database_url, migrate_on_start=None)


async def tables(kernel: Kernel) -> set[str]:
    async with kernel.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


@pytest.mark.parametrize("branch", sorted(BRANCHES))
async def test_branch_up_down_and_models_agree(fresh_settings: Settings, branch: str):
    kernel = Kernel(fresh_settings)
    migrator = kernel.migrator()
    names = {model.__tablename__ for model in BRANCHES[branch]}
    try:
        await migrator.upgrade(f"{branch}@head")
        assert names <= await tables(kernel)
        metadata = MetaData()
        for model in BRANCHES[branch]:
            model.__table__.to_metadata(metadata)

        def diff(connection) -> list:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return [d for d in compare_metadata(context, metadata) if not (d[0] == "remove_table")]

        async with kernel.db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
        await migrator.downgrade(f"{branch}@base")
        assert not names & await tables(kernel)
        assert "plugin_state" in await tables(kernel)  # the kernel branch stays
        await migrator.upgrade("heads")
        assert names <= await tables(kernel)
    finally:
        await kernel.db.dispose()
