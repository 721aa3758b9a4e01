"""The projects branch migrates up and down and matches the models; the service and MCP tools work."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from builtin_plugins.projects.models import MODELS
from kernel.app import Kernel
from kernel.security import Principal
from kernel.settings import Settings
from tests.projects.conftest import Api

TABLES = {"projects", "components", "tasks", "component_dependencies"}


@pytest.fixture
def fresh_settings(make_settings: Callable[..., Settings], fresh_database_url: str) -> Settings:
    return make_settings(database_url=fresh_database_url)


def table_of(difference) -> str | None:
    """The table an Alembic difference is about."""
    if isinstance(difference, list):  # modify_* differences come grouped per column
        return difference[0][2]
    subject = difference[1]
    if isinstance(subject, sa.Table):
        return subject.name
    table = getattr(subject, "table", None)
    if table is not None:
        return table.name
    return difference[2] if isinstance(difference[2], str) else None


async def table_names(kernel: Kernel) -> set[str]:
    async with kernel.db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_branch_goes_up_and_down_and_matches_the_models(fresh_settings: Settings, backend: str):
    kernel = Kernel(fresh_settings)
    migrator = kernel.migrator()
    try:
        await migrator.upgrade()
        assert TABLES <= await table_names(kernel)
        metadata = MetaData()
        for model in MODELS:
            model.__table__.to_metadata(metadata)

        def diff(connection: sa.Connection) -> list:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)

        async with kernel.db.engine.connect() as conn:
            differences = await conn.run_sync(diff)
        # Only our tables count; the full-text objects exist in the migration alone (no model declares them).
        ours = [d for d in differences if table_of(d) in TABLES]
        assert ours == []
        if backend == "sqlite":
            assert {"projects_fts", "components_fts", "tasks_fts"} <= await table_names(kernel)
        else:
            async with kernel.db.engine.connect() as conn:
                found = await conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_fts'"))
                assert {r[0] for r in found} == {"ix_projects_fts", "ix_components_fts", "ix_tasks_fts"}

        await migrator.downgrade("projects@base")
        left = await table_names(kernel)
        assert not (TABLES & left) and not any(name.endswith(("_fts", "_fts_data")) for name in left)
        assert "plugin_state" in left
        await migrator.upgrade("projects@head")
        assert TABLES <= await table_names(kernel)
    finally:
        await kernel.db.dispose()


async def test_search_index_follows_updates_and_deletes(api: Api):
    pid = (await api.project(name="needle in haystack"))["id"]
    cid = (await api.component(pid, name="widget"))["id"]
    tid = (await api.task(cid, title="polish the chrome"))["id"]

    async def found(url: str, q: str) -> int:
        return len((await api.get(url, params={"q": q})).json()["items"])

    assert await found("/api/v1/projects", "needle") == 1
    await api.patch(f"/api/v1/projects/{pid}", json={"name": "thread", "description": "sewing kit"})
    assert await found("/api/v1/projects", "needle") == 0 and await found("/api/v1/projects", "sew") == 1
    assert await found(f"/api/v1/projects/{pid}/components", "widg") == 1
    assert await found(f"/api/v1/projects/{pid}/tasks", "chrome polish") == 1
    await api.patch(f"/api/v1/tasks/{tid}", json={"title": "wax the floor"})
    assert await found(f"/api/v1/projects/{pid}/tasks", "chrome") == 0
    assert await found(f"/api/v1/projects/{pid}/tasks", "wax") == 1
    await api.delete(f"/api/v1/tasks/{tid}")
    assert await found(f"/api/v1/projects/{pid}/tasks", "wax") == 0


async def test_service_for_other_plugins_and_mcp_tools(api: Api):
    runtime = api.kernel.services["projects"]
    admin = Principal(id="mcp-admin", role="admin")
    project = await api.project(name="searchable rocket", status="active")
    cid = (await api.component(project["id"]))["id"]

    assert (await runtime.get_project(project["id"]))["name"] == "searchable rocket"
    page = await runtime.list_projects(status=["active"], limit=5)
    assert [p["id"] for p in page["items"]] == [project["id"]]

    tools = {tool.name: tool for _, tool in api.kernel.mcp_tools if tool.name.startswith(("projects_", "tasks_"))}
    assert set(tools) == {"projects_list", "projects_search", "projects_get", "tasks_create", "tasks_update"}
    assert tools["projects_list"].permission == "projects:read" and tools["tasks_create"].permission == "projects:write"
    for tool in tools.values():
        assert tool.input_model is not None and tool.input_model.model_json_schema()["type"] == "object"

    def call(name: str, **arguments):
        tool = tools[name]
        return tool.handler(tool.input_model.model_validate(arguments), admin)

    listed = await call("projects_list", status="active")
    assert [p["name"] for p in listed["items"]] == ["searchable rocket"]
    assert [p["id"] for p in (await call("projects_search", query="rock"))["items"]] == [project["id"]]
    assert (await call("projects_get", project_id=project["id"]))["status"] == "active"
    task = await call("tasks_create", component_id=cid, title="from an agent", progress=20)
    assert task["progress"] == 20
    updated = await call("tasks_update", task_id=task["id"], version=1, status="done")
    assert updated["status"] == "done" and updated["progress"] == 100
    over_rest = (await api.get(f"/api/v1/tasks/{task['id']}")).json()
    assert over_rest == updated
    from sdk import PreconditionFailed

    with pytest.raises(PreconditionFailed):
        await call("tasks_update", task_id=task["id"], version=1, title="stale")
