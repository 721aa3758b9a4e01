"""MCP tools contributed through ``register_mcp_tools``.

Each handler is called as ``await handler(arguments, principal)`` with ``arguments`` an instance of
the tool's ``input_model`` and ``principal`` the caller (its permissions already checked against the
tool's ``permission``); it returns JSON-able data.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from builtin_plugins.projects.models import ProjectStatus
from builtin_plugins.projects.schemas import TaskCreate, TaskUpdate
from sdk import McpTool, Principal


class ListProjects(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ProjectStatus | None = Field(None, description="Only projects in this status")
    owner: str | None = Field(None, max_length=200, description="Only projects of this owner")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1024, description="next_cursor of the previous call")


class SearchProjects(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=200, description="Words matched against names and descriptions")
    limit: int = Field(20, ge=1, le=100)


class GetProject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: uuid.UUID


class CreateTask(TaskCreate):
    component_id: uuid.UUID = Field(description="The component the task belongs to")


class UpdateTask(TaskUpdate):
    task_id: uuid.UUID
    version: int | None = Field(None, description="Refuse unless the task is still at this version")


def tools(kernel: Any) -> list[McpTool]:
    def projects() -> Any:
        return kernel.services["projects"]

    async def list_projects(args: ListProjects, principal: Principal) -> Any:
        filters = args.model_dump(exclude_none=True)
        if "status" in filters:
            filters["status"] = [filters["status"]]
        filters.setdefault("sort", "-created_at")
        return await projects().list_projects(**filters)

    async def search_projects(args: SearchProjects, principal: Principal) -> Any:
        return await projects().list_projects(q=args.query, limit=args.limit)

    async def get_project(args: GetProject, principal: Principal) -> Any:
        return await projects().get_project(args.project_id)

    async def create_task(args: CreateTask, principal: Principal) -> Any:
        data = args.model_dump(exclude={"component_id"}, exclude_unset=True)
        return await projects().create_task(args.component_id, data, principal)

    async def update_task(args: UpdateTask, principal: Principal) -> Any:
        changes = args.model_dump(exclude={"task_id", "version"}, exclude_unset=True)
        return await projects().update_task(args.task_id, changes, principal, args.version)

    read_only = {"readOnlyHint": True}
    return [
        McpTool(
            "projects_list", "List projects, newest first", "projects:read", list_projects, ListProjects, read_only
        ),
        McpTool(
            "projects_search",
            "Full-text search of projects",
            "projects:read",
            search_projects,
            SearchProjects,
            read_only,
        ),
        McpTool("projects_get", "One project with its progress", "projects:read", get_project, GetProject, read_only),
        McpTool("tasks_create", "Create a task in a component", "projects:write", create_task, CreateTask),
        McpTool("tasks_update", "Change a task (only the given fields)", "projects:write", update_task, UpdateTask),
    ]
