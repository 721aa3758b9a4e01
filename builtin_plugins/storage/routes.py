"""HTTP layer of task attachments: parse, authorize (by the route's permission), call the service."""

from __future__ import annotations

import uuid
from datetime import datetime
from urllib.parse import quote

from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from builtin_plugins.storage.models import Attachment
from builtin_plugins.storage.service import AttachmentService
from sdk import MultipartFile, Page, PageQuery, RequestContext, Route, file_upload

BASE = "/api/v1/tasks/{task_id:uuid}/attachments"
ONE = BASE + "/{attachment_id:uuid}"
TAGS = ("attachments",)


class AttachmentOut(BaseModel):
    """Metadata of one attachment."""

    id: uuid.UUID
    task_id: uuid.UUID
    filename: str
    size: int = Field(description="Bytes")
    content_type: str = Field(description="Detected from the content, not taken from the client")
    sha256: str = Field(description="Hex SHA-256 of the content")
    created_at: datetime
    created_by: str | None = None

    @classmethod
    def of(cls, row: Attachment) -> AttachmentOut:
        return cls.model_validate(row, from_attributes=True)


class DownloadLink(BaseModel):
    """Where to download an attachment: a presigned object-store URL, or this API's own path."""

    url: str
    presigned: bool = Field(description="True when the URL points at the object store directly")
    expires_at: datetime | None = Field(None, description="When a presigned URL stops working")


def _service(ctx: RequestContext) -> AttachmentService:
    return ctx.kernel.services["attachments"]


def _ids(ctx: RequestContext) -> tuple[uuid.UUID, uuid.UUID]:
    return ctx.path_params["task_id"], ctx.path_params["attachment_id"]


async def upload(ctx: RequestContext) -> AttachmentOut:
    service = _service(ctx)
    task_id = ctx.path_params["task_id"]
    await service.require_task(task_id)
    upload_file = await MultipartFile.open(ctx.request, "file", service.settings.max_upload_bytes)
    row = await service.upload(task_id, upload_file, ctx.principal)
    ctx.headers["location"] = str(ctx.request.url_for("attachments_get", task_id=task_id, attachment_id=row.id).path)
    return AttachmentOut.of(row)


async def listing(ctx: RequestContext) -> Page[AttachmentOut]:
    rows, next_cursor = await _service(ctx).list(ctx.path_params["task_id"], ctx.query.limit, ctx.query.cursor)
    return Page[AttachmentOut](items=[AttachmentOut.of(r) for r in rows], next_cursor=next_cursor)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def download(ctx: RequestContext) -> Response:
    found = await _service(ctx).open(*_ids(ctx))
    row = found.attachment
    headers = {
        "content-length": str(row.size),
        "content-disposition": content_disposition(row.filename),
        "etag": f'"{row.sha256}"',
        "x-content-type-options": "nosniff",
        "cache-control": "private, max-age=0",
    }
    return StreamingResponse(found.body, media_type=row.content_type, headers=headers)


async def link(ctx: RequestContext) -> DownloadLink:
    row, url, expires_at = await _service(ctx).link(*_ids(ctx))
    if url is None:
        path = ctx.request.url_for("attachments_get", task_id=row.task_id, attachment_id=row.id).path
        return DownloadLink(url=str(path), presigned=False)
    return DownloadLink(url=url, presigned=True, expires_at=expires_at)


async def delete(ctx: RequestContext) -> None:
    await _service(ctx).delete(*_ids(ctx), ctx.principal)


UPLOAD_DESCRIPTION = (
    "Send `multipart/form-data` with the file in the part named `file`. The body is streamed to the "
    "storage backend; the content type is detected from the bytes and the SHA-256 computed on the way."
)

ROUTES = [
    Route(
        BASE,
        upload,
        methods=("POST",),
        permission="attachments:write",
        body_content=file_upload(),
        response=AttachmentOut,
        status_code=201,
        summary="Attach a file to a task",
        description=UPLOAD_DESCRIPTION,
        tags=TAGS,
        problems={
            400: "Malformed multipart body",
            404: "No such task",
            413: "The file exceeds the upload limit",
            415: "Not multipart/form-data",
            422: "No file part named `file`",
            503: "The projects plugin is not running",
        },
        name="attachments_create",
    ),
    Route(
        BASE,
        listing,
        permission="attachments:read",
        query=PageQuery,
        response=Page[AttachmentOut],
        summary="List a task's attachments",
        tags=TAGS,
        problems={404: "No such task"},
        name="attachments_list",
    ),
    Route(
        ONE,
        download,
        permission="attachments:read",
        media_type="*/*",  # served with the content type detected from the bytes at upload
        summary="Download an attachment's bytes, with the content type detected at upload",
        tags=TAGS,
        problems={404: "No such task or attachment"},
        name="attachments_get",
    ),
    Route(
        ONE + "/link",
        link,
        permission="attachments:read",
        response=DownloadLink,
        summary="A (presigned, on S3) download URL for an attachment",
        tags=TAGS,
        problems={404: "No such task or attachment"},
        name="attachments_link",
    ),
    Route(
        ONE,
        delete,
        methods=("DELETE",),
        permission="attachments:write",
        status_code=204,
        summary="Delete an attachment",
        tags=TAGS,
        problems={404: "No such task or attachment"},
        name="attachments_delete",
    ),
]
