"""HTTP layer of the projects plugin: parse, call the service or the reader, shape the response."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import to_json
from starlette.responses import Response

from builtin_plugins.projects import transfer
from builtin_plugins.projects.schemas import (
    AsOfQuery,
    BulkTaskUpdate,
    ComponentCreate,
    ComponentOut,
    ComponentQuery,
    ComponentUpdate,
    DependencyOut,
    Graph,
    ProjectCreate,
    ProjectOut,
    ProjectQuery,
    ProjectUpdate,
    TaskCreate,
    TaskList,
    TaskOut,
    TaskQuery,
    TaskUpdate,
)
from builtin_plugins.projects.service import as_row
from kernel.errors import PayloadTooLarge, UnsupportedMediaType
from kernel.routing import validate_json
from sdk import BadRequest, Page, PreconditionFailed, RequestContext, Route, ValidationFailed

JSON = "application/json"
READ, WRITE = "projects:read", "projects:write"
TAGS = ("projects",)


def plugin(ctx: RequestContext) -> Any:
    """The plugin's runtime (service, reader, history), registered at start-up."""
    return ctx.kernel.services["projects"]


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(ctx: RequestContext) -> int | None:
    """The version an ``If-Match`` header asks for; ``None`` without one (or for ``*``)."""
    header = ctx.request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    tag = header.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise PreconditionFailed(f"If-Match {header!r} matches no version of this resource")
    return int(tag)


def document(doc: dict[str, Any], status: int = 200) -> Response:
    return Response(to_json(doc), status_code=status, media_type=JSON, headers={"etag": etag(doc["version"])})


def raw(body: str | bytes, version: int | None = None) -> Response:
    headers = {"etag": etag(version)} if version is not None else None
    return Response(body, media_type=JSON, headers=headers)


def _id(ctx: RequestContext, name: str) -> uuid.UUID:
    return ctx.path_params[name]


def _changes(model: BaseModel) -> dict[str, Any]:
    return as_row(model.model_dump(exclude_unset=True))


# -- projects ---------------------------------------------------------------------------------------
async def create_project(ctx: RequestContext) -> Response:
    doc = await plugin(ctx).service.create_project(as_row(ctx.body.model_dump()), ctx.principal)
    return document(doc, 201)


async def list_projects(ctx: RequestContext) -> Response:
    return raw(await plugin(ctx).reader.page("projects", ctx.query))


async def get_project(ctx: RequestContext) -> Response:
    ident = _id(ctx, "project_id")
    if ctx.query.as_of is not None:
        snapshot = await plugin(ctx).history.snapshot(ident, ctx.query.as_of)
        return document(snapshot.project)
    body, version = await plugin(ctx).reader.document("projects", ident)
    return raw(body, version)


async def update_project(ctx: RequestContext) -> Response:
    service = plugin(ctx).service
    return document(
        await service.update_project(_id(ctx, "project_id"), _changes(ctx.body), if_match(ctx), ctx.principal)
    )


async def delete_project(ctx: RequestContext) -> None:
    await plugin(ctx).service.delete_project(_id(ctx, "project_id"), if_match(ctx), ctx.principal)
    ctx.status_code = 204


async def project_graph(ctx: RequestContext) -> Response:
    return raw(await plugin(ctx).reader.graph(_id(ctx, "project_id")))


async def project_tasks(ctx: RequestContext) -> Response:
    scope = ("project_id", "projects", _id(ctx, "project_id"))
    return raw(await plugin(ctx).reader.page("tasks", ctx.query, scope))


# -- components -------------------------------------------------------------------------------------
async def create_component(ctx: RequestContext) -> Response:
    service = plugin(ctx).service
    doc = await service.create_component(_id(ctx, "project_id"), as_row(ctx.body.model_dump()), ctx.principal)
    return document(doc, 201)


async def list_components(ctx: RequestContext) -> Response:
    scope = ("project_id", "projects", _id(ctx, "project_id"))
    return raw(await plugin(ctx).reader.page("components", ctx.query, scope))


async def get_component(ctx: RequestContext) -> Response:
    body, version = await plugin(ctx).reader.document("components", _id(ctx, "component_id"))
    return raw(body, version)


async def update_component(ctx: RequestContext) -> Response:
    service = plugin(ctx).service
    ident = _id(ctx, "component_id")
    return document(await service.update_component(ident, _changes(ctx.body), if_match(ctx), ctx.principal))


async def delete_component(ctx: RequestContext) -> None:
    await plugin(ctx).service.delete_component(_id(ctx, "component_id"), if_match(ctx), ctx.principal)
    ctx.status_code = 204


async def put_dependency(ctx: RequestContext) -> Response:
    service = plugin(ctx).service
    edge, created = await service.add_dependency(_id(ctx, "component_id"), _id(ctx, "depends_on_id"), ctx.principal)
    return Response(to_json(edge), status_code=201 if created else 200, media_type=JSON)


async def delete_dependency(ctx: RequestContext) -> None:
    await plugin(ctx).service.remove_dependency(_id(ctx, "component_id"), _id(ctx, "depends_on_id"), ctx.principal)
    ctx.status_code = 204


# -- tasks ------------------------------------------------------------------------------------------
async def create_task(ctx: RequestContext) -> Response:
    service = plugin(ctx).service
    doc = await service.create_task(_id(ctx, "component_id"), as_row(ctx.body.model_dump()), ctx.principal)
    return document(doc, 201)


async def list_tasks(ctx: RequestContext) -> Response:
    scope = ("component_id", "components", _id(ctx, "component_id"))
    return raw(await plugin(ctx).reader.page("tasks", ctx.query, scope))


async def get_task(ctx: RequestContext) -> Response:
    body, version = await plugin(ctx).reader.document("tasks", _id(ctx, "task_id"))
    return raw(body, version)


async def update_task(ctx: RequestContext) -> Response:
    ident = _id(ctx, "task_id")
    changes = {ident: (_changes(ctx.body), if_match(ctx))}
    (doc,) = await plugin(ctx).service.update_tasks(changes, ctx.principal)
    return document(doc)


async def bulk_update_tasks(ctx: RequestContext) -> Response:
    changes = {}
    for item in ctx.body.items:
        patch = _changes(item)
        patch.pop("id")
        version = patch.pop("version", None)
        changes[item.id] = (patch, version)
    docs = await plugin(ctx).service.update_tasks(changes, ctx.principal)
    return Response(to_json({"items": docs}), media_type=JSON)


async def delete_task(ctx: RequestContext) -> None:
    await plugin(ctx).service.delete_task(_id(ctx, "task_id"), if_match(ctx), ctx.principal)
    ctx.status_code = 204


# -- import / export --------------------------------------------------------------------------------
class ExportQuery(AsOfQuery):
    format: str = Field("json", pattern="^(json|csv)$", description="json (lossless) or csv (tasks)")


class ImportQuery(BaseModel):
    mode: str = Field("restore", pattern="^(restore|copy)$", description="restore keeps ids; copy makes new ones")
    name: str | None = Field(None, min_length=1, max_length=200, description="Project name (CSV imports)")


async def export_project(ctx: RequestContext) -> Response:
    runtime = plugin(ctx)
    ident = _id(ctx, "project_id")
    if ctx.query.as_of is not None:
        snapshot = await runtime.history.snapshot(ident, ctx.query.as_of)
    else:
        snapshot = await transfer.load_snapshot(runtime.lender, ident)
    if ctx.query.format == "csv":
        disposition = f'attachment; filename="project-{ident}-tasks.csv"'
        return Response(
            transfer.tasks_csv(snapshot), media_type="text/csv", headers={"content-disposition": disposition}
        )
    return Response(to_json(transfer.export_document(snapshot)), media_type=JSON)


async def import_project(ctx: RequestContext) -> Response:
    runtime = plugin(ctx)
    content_type = ctx.request.headers.get("content-type", JSON).split(";")[0].strip().lower()
    body = await _read(ctx, runtime.config.import_max_bytes)
    if content_type == "text/csv":
        if not ctx.query.name:
            raise ValidationFailed(
                "a CSV import needs the project's name",
                errors=[{"loc": ["name"], "msg": "Field required", "type": "missing"}],
            )
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRequest("the CSV is not UTF-8 text", slug="malformed-csv") from None
        tree = transfer.tree_from_csv(ctx.query.name, text)
    elif content_type == JSON or content_type.endswith("+json"):
        doc = validate_json(body, transfer.ProjectDocument, "the project document")
        tree = transfer.tree_from_document(transfer.check_document(doc, copy=ctx.query.mode == "copy"))
    else:
        raise UnsupportedMediaType(f"expected application/json or text/csv, got {content_type!r}")
    return document(await transfer.write_tree(ctx.kernel, runtime.lender, ctx.principal, *tree), 201)


async def _read(ctx: RequestContext, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in ctx.request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the import exceeds {limit} bytes (TD_PLUGINS__PROJECTS__IMPORT_MAX_BYTES)")
        chunks.append(chunk)
    return b"".join(chunks)


# -- declarations -----------------------------------------------------------------------------------
P, C, T = "/api/v1/projects", "/api/v1/components", "/api/v1/tasks"
PID, CID, TID = "{project_id:uuid}", "{component_id:uuid}", "{task_id:uuid}"
WRITE_PROBLEMS = {412: "If-Match names another version"}


def _route(path: str, endpoint: Any, method: str = "GET", **kw: Any) -> Route:
    permission = READ if method == "GET" else WRITE
    return Route(path, endpoint, methods=(method,), permission=permission, tags=TAGS, name=endpoint.__name__, **kw)


ROUTES = [
    # Hot reads first: the router tries routes in order.
    _route(f"{P}/{PID}", get_project, query=AsOfQuery, response=ProjectOut, summary="Show a project (or as it was)"),
    _route(P, list_projects, query=ProjectQuery, response=Page[ProjectOut], summary="List projects"),
    _route(f"{T}/{TID}", get_task, response=TaskOut, summary="Show a task"),
    _route(f"{C}/{CID}", get_component, response=ComponentOut, summary="Show a component"),
    _route(f"{C}/{CID}/tasks", list_tasks, query=TaskQuery, response=Page[TaskOut], summary="List a component's tasks"),
    _route(
        f"{C}/{CID}/tasks",
        create_task,
        "POST",
        body=TaskCreate,
        response=TaskOut,
        status_code=201,
        summary="Create a task",
    ),
    _route(
        P, create_project, "POST", body=ProjectCreate, response=ProjectOut, status_code=201, summary="Create a project"
    ),
    _route(
        f"{P}/{PID}",
        update_project,
        "PATCH",
        body=ProjectUpdate,
        response=ProjectOut,
        problems=WRITE_PROBLEMS,
        summary="Change a project",
    ),
    _route(
        f"{P}/{PID}",
        delete_project,
        "DELETE",
        status_code=204,
        problems=WRITE_PROBLEMS,
        summary="Delete a project with its components and tasks",
    ),
    _route(f"{P}/{PID}/graph", project_graph, response=Graph, summary="Dependency graph, order, levels, critical path"),
    _route(
        f"{P}/{PID}/tasks", project_tasks, query=TaskQuery, response=Page[TaskOut], summary="List a project's tasks"
    ),
    _route(
        f"{P}/{PID}/components",
        list_components,
        query=ComponentQuery,
        response=Page[ComponentOut],
        summary="List a project's components",
    ),
    _route(
        f"{P}/{PID}/components",
        create_component,
        "POST",
        body=ComponentCreate,
        response=ComponentOut,
        status_code=201,
        summary="Create a component",
    ),
    _route(
        f"{P}/{PID}/export",
        export_project,
        query=ExportQuery,
        response=transfer.ProjectDocumentOut,
        response_content={"text/csv": {"type": "string", "description": "The tasks, one per row (`format=csv`)"}},
        summary="Export a project (JSON, lossless) or its tasks (CSV)",
    ),
    _route(
        f"{P}/import",
        import_project,
        "POST",
        query=ImportQuery,
        body_content={
            "application/json": transfer.ProjectDocument,
            "text/csv": {"type": "string", "description": "Tasks, one per row, as the CSV export writes them"},
        },
        response=ProjectOut,
        status_code=201,
        problems={
            400: "The body is not valid JSON, or not readable UTF-8 CSV",
            409: "The project exists (restore) or the dependencies form a cycle",
            413: "The import exceeds the configured size",
            415: "Not JSON or CSV",
        },
        summary="Import a project: an export document (JSON) or a tasks CSV",
        description="Send `application/json` (the export document) or `text/csv` (with `?name=`). All or nothing.",
    ),
    _route(
        f"{C}/{CID}",
        update_component,
        "PATCH",
        body=ComponentUpdate,
        response=ComponentOut,
        problems=WRITE_PROBLEMS,
        summary="Change a component",
    ),
    _route(
        f"{C}/{CID}",
        delete_component,
        "DELETE",
        status_code=204,
        problems=WRITE_PROBLEMS,
        summary="Delete a component with its tasks",
    ),
    _route(
        f"{C}/{CID}/dependencies/{{depends_on_id:uuid}}",
        put_dependency,
        "PUT",
        response=DependencyOut,
        status_code=201,
        problems={409: "The dependency would create a cycle (named in `cycle`)"},
        summary="Make the component depend on another",
    ),
    _route(
        f"{C}/{CID}/dependencies/{{depends_on_id:uuid}}",
        delete_dependency,
        "DELETE",
        status_code=204,
        summary="Remove a dependency",
    ),
    _route(
        f"{T}/{TID}",
        update_task,
        "PATCH",
        body=TaskUpdate,
        response=TaskOut,
        problems=WRITE_PROBLEMS,
        summary="Change a task",
    ),
    _route(
        T,
        bulk_update_tasks,
        "PATCH",
        body=BulkTaskUpdate,
        response=TaskList,
        problems={**WRITE_PROBLEMS, 404: "A task of the batch does not exist (listed in `missing`)"},
        summary="Change many tasks at once (all or nothing)",
    ),
    _route(f"{T}/{TID}", delete_task, "DELETE", status_code=204, problems=WRITE_PROBLEMS, summary="Delete a task"),
]
