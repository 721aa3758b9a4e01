"""The pages. Each reads through the API on the caller's behalf (``view.api``) and renders a template;
writes happen in the browser against the same API (``static/app.js``)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa
from starlette.responses import Response

from builtin_plugins.dashboard.api import ApiError
from builtin_plugins.dashboard.graph import layout
from builtin_plugins.dashboard.panels import third_party_panels
from builtin_plugins.dashboard.views import View, forbidden, open_view
from sdk import RequestContext

TASK_STATUSES = ("todo", "in_progress", "blocked", "done", "cancelled")
PROJECT_STATUSES = ("planning", "active", "on_hold", "completed", "archived")
COMPONENT_STATUSES = ("planned", "in_progress", "blocked", "done")
# One aggregate instead of a request per project: the overview's counts by status.
TASK_COUNTS = sa.text("SELECT project_id, status, COUNT(*) AS n FROM tasks GROUP BY project_id, status")


async def task_counts(kernel: Any) -> dict[str, dict[str, int]]:
    """``{project id: {status: count}}`` and ``"*"`` for all projects (empty without the projects plugin)."""
    if "projects" not in kernel.services:
        return {}
    async with kernel.db.engine.connect() as conn:
        rows = (await conn.execute(TASK_COUNTS)).all()
    counts: dict[str, dict[str, int]] = {"*": dict.fromkeys(TASK_STATUSES, 0)}
    for project_id, status, n in rows:
        counts.setdefault(str(project_id).replace("-", ""), {})[status] = n
        counts["*"][status] = counts["*"].get(status, 0) + n
    return counts


# -- overview -------------------------------------------------------------------------------------
async def overview(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    settings = view.dashboard.settings
    projects, events, counts, health, panels = await asyncio.gather(
        view.api.get_or(None, "/api/v1/projects", limit=settings.overview_projects, sort="-updated_at"),
        view.api.get_or(None, "/api/v1/events", limit=settings.feed_events),
        task_counts(ctx.kernel) if view.can("projects:read") else _nothing(),
        ctx.kernel.readiness(),
        third_party_panels(ctx.kernel),
    )
    builtin = [p for _, p in ctx.kernel.panels if view.can(p.permission) and p.template]
    return view.render(
        "overview.html",
        projects=projects,
        events=(events or {}).get("items", []) if events else None,
        counts=counts,
        statuses=TASK_STATUSES,
        health=health,
        builtin_panels=sorted(builtin, key=lambda p: (p.order, p.title)),
        panels=panels,
    )


async def _nothing() -> dict[str, Any]:
    return {}


# -- projects -------------------------------------------------------------------------------------
async def projects(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    if not view.can("projects:read"):
        return forbidden(view, "projects:read")
    params = _project_filters(ctx)
    page = await view.api.get_or({"items": [], "next_cursor": None}, "/api/v1/projects", **params)
    template = "fragments/project_rows.html" if ctx.request.headers.get("hx-request") else "projects.html"
    return view.render(template, page=page, filters=params, statuses=PROJECT_STATUSES)


def _project_filters(ctx: RequestContext) -> dict[str, Any]:
    q = ctx.request.query_params
    return {
        "q": q.get("q", "").strip()[:200] or None,
        "status": q.get("status") if q.get("status") in PROJECT_STATUSES else None,
        "cursor": q.get("cursor") or None,
        "limit": 50,
        "sort": "-updated_at",
    }


async def _project_data(view: View, project_id: str) -> dict[str, Any]:
    base = f"/api/v1/projects/{project_id}"
    project, components, tasks, graph = await asyncio.gather(
        view.api.get(base),
        view.api.get(f"{base}/components", limit=500, sort="name"),
        view.api.get(f"{base}/tasks", limit=500, sort="created_at"),
        view.api.get(f"{base}/graph"),
    )
    names = {c["id"]: c["name"] for c in components["items"]}
    columns: dict[str, list[dict[str, Any]]] = {s: [] for s in TASK_STATUSES}
    for task in tasks["items"]:
        task["component_name"] = names.get(task["component_id"], "")
        columns.setdefault(task["status"], []).append(task)
    return {
        "project": project,
        "components": components["items"],
        "columns": columns,
        "drawing": layout(graph),
        "names": names,
        "statuses": TASK_STATUSES,
        "component_statuses": COMPONENT_STATUSES,
    }


async def project(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    if not view.can("projects:read"):
        return forbidden(view, "projects:read")
    try:
        data = await _project_data(view, str(ctx.path_params["project_id"]))
    except ApiError as exc:
        return view.render("error.html", status=exc.status, title="Project unavailable", message=exc.detail)
    template = {"board": "fragments/board.html"}.get(ctx.request.query_params.get("part", ""), "project.html")
    return view.render(template, **data)


async def task_detail(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    task_id = str(ctx.path_params["task_id"])
    try:
        task = await view.api.get(f"/api/v1/tasks/{task_id}")
    except ApiError as exc:
        return view.render("error.html", status=exc.status, title="Task unavailable", message=exc.detail)
    attachments = await view.api.get_or(None, f"/api/v1/tasks/{task_id}/attachments", limit=100)
    return view.render("fragments/task.html", task=task, attachments=attachments, statuses=TASK_STATUSES)


# -- events and dead letters ------------------------------------------------------------------------
EVENT_FILTERS = ("topic", "type", "subject_id", "since", "until", "cursor")


async def events(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    q = ctx.request.query_params
    filters = {k: q.get(k, "").strip() or None for k in EVENT_FILTERS}
    error = None
    try:
        page = await view.api.get("/api/v1/events", limit=50, **filters)
    except ApiError as exc:
        page, error = {"items": [], "next_cursor": None}, exc.detail
    return view.render("events.html", page=page, filters=filters, error=error)


async def dlq(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    page = await view.api.get_or(None, "/api/v1/dlq", limit=100, cursor=ctx.request.query_params.get("cursor"))
    return view.render("dlq.html", page=page)


# -- plugins ----------------------------------------------------------------------------------------
async def plugins(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    page = await view.api.get_or(None, "/api/v1/plugins", limit=500)
    return view.render("plugins.html", page=page)


async def plugin(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    name = ctx.path_params["name"]
    try:
        detail = await view.api.get(f"/api/v1/plugins/{name}")
    except ApiError as exc:
        return view.render("error.html", status=exc.status, title="Plugin unavailable", message=exc.detail)
    violations = await view.api.get_or(None, f"/api/v1/plugins/{name}/violations", limit=100)
    config = None
    if detail.get("source") == "uploaded" and view.can("plugins:admin"):
        config = await view.api.get_or(None, f"/api/v1/plugins/{name}/config")
    schema = ((detail.get("manifest") or {}).get("contributions") or {}).get("config_schema")
    return view.render(
        "plugin.html",
        plugin=detail,
        violations=violations,
        config=config,
        fields=schema_fields(schema, (config or {}).get("config", {})),
        report=json.dumps(detail.get("scan_report"), indent=2) if detail.get("scan_report") else None,
    )


def schema_fields(schema: dict[str, Any] | None, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Form fields for the top-level properties of a JSON schema (scalars, enums and string lists)."""
    if not schema or schema.get("type") != "object":
        return []
    required = set(schema.get("required", []))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        kind = prop.get("type", "string")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        widget = "text"
        if "enum" in prop:
            widget = "select"
        elif kind == "boolean":
            widget = "checkbox"
        elif kind in ("integer", "number"):
            widget = "number"
        elif kind in ("array", "object"):
            widget = "json"
        value = values.get(name, prop.get("default"))
        fields.append(
            {
                "name": name,
                "type": kind,
                "widget": widget,
                "title": prop.get("title") or name,
                "description": prop.get("description", ""),
                "enum": prop.get("enum", []),
                "required": name in required,
                "value": json.dumps(value) if widget == "json" and value is not None else value,
                "minimum": prop.get("minimum"),
                "maximum": prop.get("maximum"),
            }
        )
    return fields


# -- MCP --------------------------------------------------------------------------------------------
async def mcp(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    enabled = "mcp" in ctx.kernel.services or any(name == "mcp" for name, _ in ctx.kernel.routes)
    servers = tools = None
    error = None
    if enabled:
        try:
            servers, tools = await asyncio.gather(
                view.api.get("/api/v1/mcp/servers"), view.api.get("/api/v1/mcp/tools")
            )
        except ApiError as exc:
            error = exc.detail
            enabled = exc.status != 404
    return view.render("mcp.html", enabled=enabled, servers=_items(servers), tools=_items(tools), error=error)


def _items(page: Any) -> list[Any]:
    if isinstance(page, dict):
        return list(page.get("items", []))
    return list(page or [])


# -- users, tokens, audit, logs --------------------------------------------------------------------
async def users(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    users_page, tokens = await asyncio.gather(
        view.api.get_or(None, "/api/v1/users", limit=200) if view.can("users:read") else _none(),
        view.api.get_or(None, "/api/v1/auth/tokens", limit=200),
    )
    return view.render("users.html", users=users_page, tokens=tokens)


async def _none() -> None:
    return None


async def audit(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    if not view.can("audit:read"):
        return forbidden(view, "audit:read")
    q = ctx.request.query_params
    filters = {k: q.get(k, "").strip() or None for k in ("action", "outcome", "actor_id", "cursor")}
    error = None
    try:
        page = await view.api.get("/api/v1/audit", limit=100, **filters)
    except ApiError as exc:
        page, error = None, exc.detail
    return view.render("audit.html", page=page, filters=filters, error=error)


async def logs(ctx: RequestContext) -> Response:
    view = await open_view(ctx)
    if not isinstance(view, View):
        return view
    if not view.can("logs:read"):
        return forbidden(view, "logs:read")
    q = ctx.request.query_params
    filters = {k: q.get(k, "").strip() or None for k in ("min_level", "service", "q", "cursor")}
    error = None
    try:
        page = await view.api.get("/api/v1/logs", limit=100, **filters)
    except ApiError as exc:
        page, error = None, exc.detail
    return view.render("logs.html", page=page, filters=filters, error=error)
