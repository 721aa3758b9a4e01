"""HTTP layer of the plugin registry: parse, authorize (declared per route), call the service, shape."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, RootModel

from builtin_plugins.plugins.models import STATUSES, PluginRow, PluginViolation
from builtin_plugins.plugins.service import RegistryService
from kernel.pagination import invalid_cursor
from kernel.routing import parse_body
from sdk import (
    MultipartFile,
    Page,
    PageQuery,
    RequestContext,
    Route,
    decode_cursor,
    encode_cursor,
    file_upload,
)

Source = Literal["builtin", "entry_point", "uploaded"]


class PluginSummary(BaseModel):
    """One plugin: builtin, installed from an entry point, or uploaded through the registry."""

    name: str
    version: str
    source: Source
    builtin: bool = False
    module: str | None = Field(None, description="The Python module of a kernel plugin")
    status: str = Field(description="enabled | disabled for kernel plugins; the lifecycle state for uploaded ones")
    enabled: bool = Field(description="The operator's choice (kernel plugins: applies at the next start)")
    active: bool = Field(
        description="Applied by the instance that answered: kernel plugins loaded in its process; uploaded "
        "plugins enabled in its view, which every instance refreshes at once through the bus"
    )
    verdict: Literal["pass", "fail"] | None = None
    type: str | None = None
    description: str = ""
    violations_count: int = 0
    hooks: list[str] = Field(default_factory=list)
    error: str | None = None


class Override(BaseModel):
    reason: str
    by: str | None
    at: datetime | None


class ApiAccess(BaseModel):
    permission: str
    granted: bool


class Package(BaseModel):
    filename: str
    sha256: str
    size: int


class PluginDetail(PluginSummary):
    """A plugin with its manifest, latest scan report and API access."""

    author: str | None = None
    manifest: dict[str, Any] | None = None
    scan_report: dict[str, Any] | None = None
    override: Override | None = None
    permissions: list[ApiAccess] = Field(default_factory=list)
    package: Package | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    scanned_at: datetime | None = None


class PluginQuery(PageQuery):
    status: Literal[*STATUSES] | None = None  # type: ignore[valid-type]
    source: Source | None = None
    q: str | None = Field(None, max_length=100, description="Text in the name or description")


class EnableRequest(BaseModel):
    override_reason: str | None = Field(
        None, min_length=10, max_length=2000, description="Enable despite a failing scan; stored and audited"
    )


class ConfigBody(RootModel[dict[str, Any]]):
    """The plugin's configuration: a JSON object matching the manifest's config_schema."""


class ConfigOut(BaseModel):
    name: str
    config: dict[str, Any]
    revision: int


class Violation(BaseModel):
    id: str
    kind: str
    detail: str
    context: dict[str, Any]
    occurred_at: datetime


class KernelChoice(BaseModel):
    name: str
    enabled: bool
    restart_required: bool


def _service(ctx: RequestContext) -> RegistryService:
    return ctx.kernel.services["plugins"]


def _sandboxed_running(ctx: RequestContext) -> set[str]:
    """Uploaded plugins whose sandbox worker this process runs."""
    return {r.name for r in ctx.kernel.host.records.values() if r.sandboxed and r.active}


def _uploaded(
    row: PluginRow,
    detail: bool = False,
    access: list[Any] = (),  # type: ignore[assignment]
    active: bool = False,
) -> PluginSummary | PluginDetail:
    base: dict[str, Any] = {
        "name": row.name,
        "version": row.version,
        "source": "uploaded",
        "status": row.status,
        "enabled": row.status == "enabled",
        "active": active,
        "verdict": row.verdict,
        "type": row.type,
        "description": row.description,
        "violations_count": row.violations_count,
    }
    if not detail:
        return PluginSummary(**base)
    override = (
        Override(reason=row.override_reason, by=row.override_by, at=row.override_at) if row.override_reason else None
    )
    return PluginDetail(
        **base,
        author=row.author,
        manifest=row.manifest,
        scan_report=row.scan_report,
        override=override,
        permissions=[ApiAccess(permission=a.permission, granted=a.granted) for a in access],
        package=Package(filename=row.filename, sha256=row.package_sha256, size=row.package_size)
        if row.package_path
        else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        scanned_at=row.scanned_at,
    )


def _kernel_plugin(record: Any, choices: dict[str, bool]) -> PluginDetail:
    enabled = choices.get(record.name, True)
    return PluginDetail(
        name=record.name,
        version=record.version,
        source="builtin" if record.builtin else "entry_point",
        builtin=record.builtin,
        module=record.module,
        status="enabled" if enabled else "disabled",
        enabled=enabled,
        active=record.active,
        description=record.description,
        hooks=record.hooks,
        error=record.error,
    )


async def list_plugins(ctx: RequestContext) -> Page[PluginSummary]:
    query: PluginQuery = ctx.query
    service = _service(ctx)
    choices = await service.persisted_choices()
    items: list[PluginSummary] = [
        PluginSummary(**_kernel_plugin(r, choices).model_dump(include=set(PluginSummary.model_fields)))
        for r in ctx.kernel.host.records.values()
        if not r.sandboxed
    ]
    running = _sandboxed_running(ctx)
    rows = await service.rows(include_removed=query.status == "removed")
    items += [_uploaded(row, active=row.name in running) for row in rows]
    if query.status:
        items = [i for i in items if i.status == query.status]
    if query.source:
        items = [i for i in items if i.source == query.source]
    if query.q:
        needle = query.q.lower()
        items = [i for i in items if needle in i.name.lower() or needle in i.description.lower()]
    items.sort(key=lambda i: i.name)
    if query.cursor:
        (after,) = decode_cursor(query.cursor, 1)
        items = [i for i in items if i.name > str(after)]
    page = items[: query.limit]
    more = len(items) > query.limit
    return Page[PluginSummary](items=page, next_cursor=encode_cursor([page[-1].name]) if more else None)


async def get_plugin(ctx: RequestContext) -> PluginDetail:
    name = ctx.path_params["name"]
    service = _service(ctx)
    record = ctx.kernel.host.records.get(name)
    if record is not None and not record.sandboxed:
        return _kernel_plugin(record, await service.persisted_choices())
    row = await service.get(name)
    access = await service.api_access(row)
    return _uploaded(row, True, access, active=name in _sandboxed_running(ctx))  # type: ignore[return-value]


async def upload_plugin(ctx: RequestContext) -> PluginDetail:
    service = _service(ctx)
    upload = await MultipartFile.open(ctx.request, "file", service.settings.max_upload_bytes)
    row = await service.install_upload(upload.chunks(), upload.filename, ctx.principal)
    ctx.status_code = 201
    return _uploaded(row, True, await service.api_access(row), active=row.name in _sandboxed_running(ctx))  # type: ignore[return-value]


async def _changed(ctx: RequestContext, result: Any) -> PluginDetail | KernelChoice:
    if isinstance(result, dict):
        return KernelChoice(**result)
    access = await _service(ctx).api_access(result)
    return _uploaded(result, True, access, active=result.name in _sandboxed_running(ctx))  # type: ignore[return-value]


async def enable_plugin(ctx: RequestContext) -> PluginDetail | KernelChoice:
    raw = await ctx.request.body()
    body = EnableRequest()
    if raw.strip():
        body = await parse_body(ctx.request, EnableRequest, ctx.kernel.settings.max_body_bytes)  # type: ignore[assignment]
    result = await _service(ctx).enable(ctx.path_params["name"], ctx.principal, body.override_reason)  # type: ignore[arg-type]
    return await _changed(ctx, result)


async def disable_plugin(ctx: RequestContext) -> PluginDetail | KernelChoice:
    return await _changed(ctx, await _service(ctx).disable(ctx.path_params["name"], ctx.principal))  # type: ignore[arg-type]


async def rescan_plugin(ctx: RequestContext) -> PluginDetail:
    row = await _service(ctx).rescan(ctx.path_params["name"], ctx.principal)  # type: ignore[arg-type]
    return await _changed(ctx, row)  # type: ignore[return-value]


async def delete_plugin(ctx: RequestContext) -> None:
    await _service(ctx).remove(ctx.path_params["name"], ctx.principal)  # type: ignore[arg-type]
    ctx.status_code = 204


async def get_config(ctx: RequestContext) -> ConfigOut:
    return ConfigOut(**await _service(ctx).get_config(ctx.path_params["name"]))


async def put_config(ctx: RequestContext) -> ConfigOut:
    values = ctx.body.root
    return ConfigOut(**await _service(ctx).set_config(ctx.path_params["name"], values, ctx.principal))  # type: ignore[arg-type]


def _violation_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    when, violation_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(when)), uuid.UUID(str(violation_id))
    except ValueError:
        raise invalid_cursor() from None


async def list_violations(ctx: RequestContext) -> Page[Violation]:
    query: PageQuery = ctx.query
    after = _violation_cursor(query.cursor) if query.cursor else None
    rows: list[PluginViolation] = await _service(ctx).violations(ctx.path_params["name"], query.limit, after)  # type: ignore[arg-type]
    page, more = rows[: query.limit], len(rows) > query.limit
    items = [
        Violation(id=str(v.id), kind=v.kind, detail=v.detail, context=v.context, occurred_at=v.occurred_at)
        for v in page
    ]
    cursor = encode_cursor([page[-1].occurred_at.isoformat(), str(page[-1].id)]) if more else None
    return Page[Violation](items=items, next_cursor=cursor)


NAME = "/api/v1/plugins/{name}"
TAGS = ("plugins",)
NOT_FOUND = {404: "No such plugin"}
ROUTES = [
    Route(
        "/api/v1/plugins",
        list_plugins,
        permission="plugins:read",
        query=PluginQuery,
        response=Page[PluginSummary],
        summary="List plugins: builtin, installed and uploaded",
        tags=TAGS,
        name="plugins_list",
    ),
    Route(
        "/api/v1/plugins",
        upload_plugin,
        methods=("POST",),
        permission="plugins:admin",
        body_content=file_upload(),
        response=PluginDetail,
        status_code=201,
        summary="Upload a plugin package (multipart field 'file'): quarantined, scanned, registered",
        tags=TAGS,
        name="plugins_upload",
        problems={
            400: "Malformed multipart body, or a file part without a name",
            409: "A plugin of that name exists",
            413: "Package too large",
            415: "Not a package",
            422: "Unusable package or invalid manifest",
        },
    ),
    Route(
        NAME,
        get_plugin,
        permission="plugins:read",
        response=PluginDetail,
        summary="Show a plugin: manifest, scan report, status, violations count",
        tags=TAGS,
        problems=NOT_FOUND,
        name="plugins_get",
    ),
    Route(
        NAME,
        delete_plugin,
        methods=("DELETE",),
        permission="plugins:admin",
        status_code=204,
        summary="Remove an uploaded plugin",
        tags=TAGS,
        problems={**NOT_FOUND, 409: "A builtin plugin"},
        name="plugins_delete",
    ),
    Route(
        f"{NAME}/enable",
        enable_plugin,
        methods=("POST",),
        permission="plugins:admin",
        response=PluginDetail | KernelChoice,
        summary="Enable a plugin (override a failing scan with a reason)",
        description='Body (optional): {"override_reason": "..."}.',
        tags=TAGS,
        problems={**NOT_FOUND, 409: "Refused by the scan verdict or the lifecycle"},
        name="plugins_enable",
    ),
    Route(
        f"{NAME}/disable",
        disable_plugin,
        methods=("POST",),
        permission="plugins:admin",
        response=PluginDetail | KernelChoice,
        summary="Disable a plugin",
        tags=TAGS,
        problems={**NOT_FOUND, 409: "Not allowed from the current state"},
        name="plugins_disable",
    ),
    Route(
        f"{NAME}/rescan",
        rescan_plugin,
        methods=("POST",),
        permission="plugins:admin",
        response=PluginDetail,
        summary="Scan the stored package again",
        tags=TAGS,
        problems={**NOT_FOUND, 409: "A builtin plugin"},
        name="plugins_rescan",
    ),
    Route(
        f"{NAME}/config",
        get_config,
        permission="plugins:admin",
        response=ConfigOut,
        summary="Show a plugin's configuration",
        tags=TAGS,
        problems=NOT_FOUND,
        name="plugins_config_get",
    ),
    Route(
        f"{NAME}/config",
        put_config,
        methods=("PUT",),
        permission="plugins:admin",
        body=ConfigBody,
        response=ConfigOut,
        summary="Replace a plugin's configuration (validated against its JSON schema)",
        tags=TAGS,
        problems={**NOT_FOUND, 409: "A builtin plugin"},
        name="plugins_config_put",
    ),
    Route(
        f"{NAME}/violations",
        list_violations,
        permission="plugins:read",
        query=PageQuery,
        response=Page[Violation],
        summary="Security violations of a plugin, newest first",
        tags=TAGS,
        problems=NOT_FOUND,
        name="plugins_violations",
    ),
]
