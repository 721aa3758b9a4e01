"""The plugin at run time: its settings and the ``projects`` service other plugins use."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic import BaseModel, Field

from builtin_plugins.projects.history import History
from builtin_plugins.projects.lean import Lender
from builtin_plugins.projects.reads import Reader
from builtin_plugins.projects.schemas import ProjectCreate, ProjectQuery, TaskCreate, TaskQuery, TaskUpdate
from builtin_plugins.projects.service import ProjectsService, as_row


class ProjectsSettings(BaseModel):
    """``[plugins.projects]`` in taylordash.toml, ``TD_PLUGINS__PROJECTS__*`` in the environment."""

    lent_connections: int = Field(
        8,
        ge=1,
        le=64,
        description="Database connections kept out of the kernel's pool (TD_DB_POOL_SIZE + TD_DB_MAX_OVERFLOW) "
        "for this plugin's reads and writes",
    )
    import_max_bytes: int = Field(256 * 1024 * 1024, ge=1024, description="Largest import body accepted")


class Projects:
    """``kernel.services["projects"]``: the reader, the write service and time travel, plus
    dictionary-in, dictionary-out shortcuts for other plugins (MCP tools, dashboard)."""

    def __init__(self, kernel: Any, config: ProjectsSettings) -> None:
        self.config = config
        self.lender = Lender(kernel.db.engine, config.lent_connections)
        self.reader = Reader(self.lender)
        self.service = ProjectsService(kernel, self.lender)
        self.history = History(self.lender)

    async def close(self) -> None:
        await self.lender.close()

    # -- shortcuts -----------------------------------------------------------------------------------
    async def list_projects(self, **filters: Any) -> dict[str, Any]:
        """A page of projects; ``filters`` are the query parameters of ``GET /projects``."""
        return json.loads(await self.reader.page("projects", ProjectQuery.model_validate(filters)))

    async def get_project(self, project_id: uuid.UUID | str) -> dict[str, Any]:
        body, _ = await self.reader.document("projects", uuid.UUID(str(project_id)))
        return json.loads(body)

    async def create_project(self, data: dict[str, Any], actor: Any) -> dict[str, Any]:
        """Create a project from the fields ``POST /projects`` takes."""
        return await self.service.create_project(as_row(ProjectCreate.model_validate(data).model_dump()), actor)

    async def list_tasks(self, project_id: uuid.UUID | str, **filters: Any) -> dict[str, Any]:
        """A page of a project's tasks; ``filters`` are the query parameters of ``GET /projects/{id}/tasks``."""
        scope = ("project_id", "projects", uuid.UUID(str(project_id)))
        return json.loads(await self.reader.page("tasks", TaskQuery.model_validate(filters), scope))

    async def create_task(self, component_id: uuid.UUID | str, data: dict[str, Any], actor: Any) -> dict[str, Any]:
        task = TaskCreate.model_validate(data)
        return await self.service.create_task(uuid.UUID(str(component_id)), as_row(task.model_dump()), actor)

    async def update_task(
        self, task_id: uuid.UUID | str, changes: dict[str, Any], actor: Any, version: int | None = None
    ) -> dict[str, Any]:
        patch = as_row(TaskUpdate.model_validate(changes).model_dump(exclude_unset=True))
        (doc,) = await self.service.update_tasks({uuid.UUID(str(task_id)): (patch, version)}, actor)
        return doc
