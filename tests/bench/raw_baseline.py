"""The raw baseline of bench_projects.py: Starlette + an asyncpg pool, no kernel, no auth, no ORM.

It runs the same SQL as the projects plugin (the statements are produced by the plugin's own SQL
builders, so the text is identical) and writes the same rows for ``POST .../tasks`` (task, component
and project roll-ups, one outbox row) in one transaction. Serve it with
``TD_BASELINE_DSN=postgresql://… uvicorn tests.bench.raw_baseline:app``.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql import asyncpg as pg_dialect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uuid_utils.compat import uuid7

from builtin_plugins.projects.queries import document_sql, list_shape, list_statement, page_json

DIALECT = pg_dialect.dialect()
DOCUMENT = document_sql("postgresql", "projects")
GET_PROJECT = f"SELECT {DOCUMENT} AS doc, projects.version FROM projects WHERE projects.id = $1::UUID"


class _FirstPage:
    status = None
    owner = None
    label = None
    due_from = None
    due_to = None
    q = None
    sort = "created_at"
    cursor = None


LIST_PROJECTS = str(
    list_statement("postgresql", "projects", list_shape(None, _FirstPage, "owner")).compile(dialect=DIALECT)
)
LOCK_COMPONENT = (
    "SELECT project_id, task_count, task_progress_sum, task_estimate_minutes, progress "
    "FROM components WHERE id = $1 FOR UPDATE"
)
INSERT_TASK = (
    "INSERT INTO tasks (id, project_id, component_id, title, description, status, progress, assignee, labels, "
    "metadata, estimate_minutes, due_date, completed_at, created_at, updated_at, version) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, NULL, $13, $13, 1)"
)
UPDATE_COMPONENT = (
    "UPDATE components SET task_count = $2, task_progress_sum = $3, task_estimate_minutes = $4, progress = $5 "
    "WHERE id = $1"
)
UPDATE_PROJECT = (
    "UPDATE projects SET component_progress_sum = component_progress_sum + $2, progress = CASE WHEN "
    "component_count > 0 THEN (2 * (component_progress_sum + $2) + component_count) / (2 * component_count) "
    "ELSE 0 END WHERE id = $1"
)
INSERT_OUTBOX = "INSERT INTO event_outbox (id, topic, body, created_at) VALUES ($1, $2, $3, $4)"
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: Starlette) -> Any:
    state["pool"] = await asyncpg.create_pool(os.environ["TD_BASELINE_DSN"], min_size=10, max_size=10)
    yield
    await state["pool"].close()


async def get_project(request: Request) -> Response:
    async with state["pool"].acquire() as conn:
        row = await conn.fetchrow(GET_PROJECT, request.path_params["id"])
    if row is None:
        return Response(status_code=404)
    return Response(row[0], media_type="application/json", headers={"etag": f'"{row[1]}"'})


async def list_projects(request: Request) -> Response:
    limit = int(request.query_params.get("limit", "50"))
    async with state["pool"].acquire() as conn:
        rows = await conn.fetch(LIST_PROJECTS, limit + 1)
    return Response(page_json([r[0] for r in rows[:limit]], None), media_type="application/json")


async def create_task(request: Request) -> Response:
    body = json.loads(await request.body())
    component_id = request.path_params["id"]
    now = datetime.now(UTC)
    task_id = uuid7()
    progress = int(body.get("progress", 0))
    estimate = body.get("estimate_minutes")
    async with state["pool"].acquire() as conn, conn.transaction():
        found = await conn.fetchrow(LOCK_COMPONENT, component_id)
        if found is None:
            return Response(status_code=404)
        project_id, count, total, estimate_sum, old = found
        await conn.execute(
            INSERT_TASK,
            task_id,
            project_id,
            component_id,
            body["title"],
            body.get("description", ""),
            body.get("status", "todo"),
            progress,
            body.get("assignee"),
            json.dumps(body.get("labels", [])),
            json.dumps(body.get("metadata", {})),
            estimate,
            None,
            now,
        )
        count, total = count + 1, total + progress
        new = (2 * total + count) // (2 * count)
        await conn.execute(UPDATE_COMPONENT, component_id, count, total, estimate_sum + (estimate or 0), new)
        if new != old:
            await conn.execute(UPDATE_PROJECT, project_id, new - old)
        doc = {
            "id": str(task_id),
            "project_id": str(project_id),
            "component_id": str(component_id),
            "title": body["title"],
            "progress": progress,
            "created_at": now.isoformat(),
        }
        event = {
            "id": str(uuid7()),
            "type": "tasks.created",
            "topic": "tracker/events/tasks/created",
            "source": "baseline",
            "occurred_at": now.isoformat(),
            "subject_id": str(task_id),
            "payload": {"project_id": str(project_id), "before": None, "after": doc},
        }
        await conn.execute(INSERT_OUTBOX, uuid.UUID(event["id"]), event["topic"], json.dumps(event), now)
    return Response(json.dumps(doc), status_code=201, media_type="application/json")


app = Starlette(
    routes=[
        Route("/api/v1/projects/{id:uuid}", get_project),
        Route("/api/v1/projects", list_projects),
        Route("/api/v1/components/{id:uuid}/tasks", create_task, methods=["POST"]),
    ],
    lifespan=lifespan,
)
