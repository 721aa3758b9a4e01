"""Task attachments: stream in, checksum, sniff, store, record, publish; list, read, delete."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlmodel import select

from builtin_plugins.storage.backends import FileBackend, ObjectNotFound, ObjectStorage
from builtin_plugins.storage.config import StorageSettings
from builtin_plugins.storage.models import Attachment
from builtin_plugins.storage.s3 import S3Backend
from builtin_plugins.storage.sniff import SNIFF_BYTES, clean_filename, sniff_content_type
from builtin_plugins.storage.streams import BLOCK, reblock
from kernel.errors import NotFound, PayloadTooLarge, ServiceUnavailable
from kernel.pagination import invalid_cursor
from sdk import Event, MultipartFile, Principal, decode_cursor, encode_cursor, keyset_after, split_page

if TYPE_CHECKING:
    from kernel.app import Kernel

log = structlog.get_logger("taylordash.storage")
ATTACHMENT_PREFIX = "attachments/"


class StorageMetrics:
    """Prometheus metrics of uploads and downloads."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.uploads = Counter(
            "taylordash_storage_uploads", "Attachment uploads by outcome", ["outcome"], registry=registry
        )
        self.bytes_in = Counter("taylordash_storage_upload_bytes", "Bytes stored by uploads", registry=registry)
        self.bytes_out = Counter("taylordash_storage_download_bytes", "Bytes streamed to clients", registry=registry)
        self.seconds = Histogram(
            "taylordash_storage_operation_duration_seconds",
            "Time spent in storage backend operations",
            ["operation"],
            registry=registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
        )


@dataclass(frozen=True, slots=True)
class Download:
    """An attachment ready to stream: its metadata and its bytes."""

    attachment: Attachment
    body: AsyncIterator[bytes]


class AttachmentService:
    """Attachments of tasks. Task existence is asked of ``kernel.services["projects"]``."""

    def __init__(
        self, kernel: Kernel, backend: ObjectStorage, settings: StorageSettings, metrics: StorageMetrics
    ) -> None:
        self.kernel = kernel
        self.backend = backend
        self.settings = settings
        self.metrics = metrics

    async def require_task(self, task_id: uuid.UUID) -> None:
        """404 unless the projects plugin knows task ``task_id``; 503 when that plugin is not running."""
        projects: Any = self.kernel.services.get("projects")
        if projects is None:
            raise ServiceUnavailable("the projects plugin is not running", slug="projects-unavailable")
        task_exists = getattr(projects, "task_exists", None)
        found = await task_exists(task_id) if task_exists else await projects.reader.exists("tasks", task_id)
        if not found:
            raise NotFound(f"no task {task_id}", slug="task-not-found")

    async def upload(self, task_id: uuid.UUID, upload: MultipartFile, actor: Principal | None) -> Attachment:
        """Store the uploaded file and record it, publishing ``attachments.created``."""
        await self.require_task(task_id)
        attachment_id = uuid.uuid4()
        key = f"{ATTACHMENT_PREFIX}{task_id}/{attachment_id}"
        filename = clean_filename(upload.filename)
        limit = self.settings.max_upload_bytes
        blocks = reblock(upload.chunks(), BLOCK)
        head = await anext(blocks, b"")
        content_type = sniff_content_type(head[:SNIFF_BYTES], filename)
        digest = hashlib.sha256()
        size = 0

        async def checked() -> AsyncIterator[bytes]:
            nonlocal size
            pending = [head] if head else []
            while True:
                if pending:
                    block = pending.pop()
                else:
                    block = await anext(blocks, b"")
                    if not block:
                        return
                size += len(block)
                if size > limit:
                    raise PayloadTooLarge(f"attachments are limited to {limit} bytes", limit=limit)
                await asyncio.to_thread(digest.update, block)
                yield block

        started = time.perf_counter()
        try:
            await self.backend.put(key, checked(), content_type)
        except PayloadTooLarge:
            self.metrics.uploads.labels("too_large").inc()
            raise
        except Exception:
            self.metrics.uploads.labels("failed").inc()
            raise
        self.metrics.seconds.labels("put").observe(time.perf_counter() - started)
        row = Attachment(
            id=attachment_id,
            task_id=task_id,
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=digest.hexdigest(),
            object_key=key,
            created_by=actor.id if actor else None,
        )
        try:
            async with self.kernel.db.session() as session:
                session.add(row)
                await self.kernel.publish(session, self._event("attachments.created", row, actor))
                await session.commit()
        except BaseException:
            await self.backend.delete(key)
            self.metrics.uploads.labels("failed").inc()
            raise
        self.metrics.uploads.labels("stored").inc()
        self.metrics.bytes_in.inc(size)
        log.info("attachment.stored", attachment_id=str(row.id), task_id=str(task_id), size=size)
        return row

    def _event(self, kind: str, row: Attachment, actor: Principal | None) -> Event:
        return Event.create(
            type=kind,
            source="storage",
            subject_id=str(row.id),
            actor=actor,
            payload={
                "task_id": str(row.task_id),
                "attachment_id": str(row.id),
                "filename": row.filename,
                "size": row.size,
                "content_type": row.content_type,
                "sha256": row.sha256,
            },
        )

    async def list(self, task_id: uuid.UUID, limit: int, cursor: str | None) -> tuple[list[Attachment], str | None]:
        """One page of a task's attachments, oldest first."""
        await self.require_task(task_id)
        query = select(Attachment).where(Attachment.task_id == task_id)
        columns = (Attachment.__table__.c.created_at, Attachment.__table__.c.id)
        if cursor is not None:
            created, ident = decode_cursor(cursor, 2)
            try:
                after = (datetime.fromisoformat(str(created)), uuid.UUID(str(ident)))
            except ValueError:
                raise invalid_cursor() from None
            query = query.where(keyset_after(columns, after, descending=False))
        query = query.order_by(*columns).limit(limit + 1)
        async with self.kernel.db.session() as session:
            rows = list((await session.exec(query)).all())
        page, more = split_page(rows, limit)
        next_cursor = encode_cursor([page[-1].created_at.isoformat(), str(page[-1].id)]) if more else None
        return page, next_cursor

    async def get(self, task_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
        """The attachment's metadata; 404 ``attachment-not-found`` unless it belongs to the task."""
        await self.require_task(task_id)
        async with self.kernel.db.session() as session:
            row = await session.get(Attachment, attachment_id)
        if row is None or row.task_id != task_id:
            raise NotFound(f"no attachment {attachment_id} on task {task_id}", slug="attachment-not-found")
        return row

    async def open(self, task_id: uuid.UUID, attachment_id: uuid.UUID) -> Download:
        """The attachment and a stream of its bytes (the first block is already fetched, so a lost
        object is reported before any response starts)."""
        row = await self.get(task_id, attachment_id)
        stream = self.backend.read(row.object_key)
        try:
            first = await anext(stream, b"")
        except ObjectNotFound:
            log.error("attachment.object_missing", attachment_id=str(row.id), key=row.object_key)
            raise NotFound(
                "the attachment's bytes are missing from storage", slug="attachment-object-missing"
            ) from None

        async def body() -> AsyncIterator[bytes]:
            if first:
                self.metrics.bytes_out.inc(len(first))
                yield first
            async for block in stream:
                self.metrics.bytes_out.inc(len(block))
                yield block

        return Download(row, body())

    async def link(self, task_id: uuid.UUID, attachment_id: uuid.UUID) -> tuple[Attachment, str | None, datetime]:
        """A presigned URL for the attachment (``None`` when the backend cannot sign) and its expiry."""
        row = await self.get(task_id, attachment_id)
        lifetime = timedelta(seconds=self.settings.presign_expiry_seconds)
        url = await self.backend.presigned_url(row.object_key, lifetime, row.filename, row.content_type)
        return row, url, datetime.now(UTC) + lifetime

    async def on_task_deleted(self, event: Event) -> None:
        """Event handler for ``tasks.deleted``: forget the task's attachments and remove their objects.
        Safe to run again for the same event."""
        if event.subject_id is None:
            return
        try:
            task_id = uuid.UUID(event.subject_id)
        except ValueError:
            return
        async with self.kernel.db.session() as session:
            rows = list((await session.exec(select(Attachment).where(Attachment.task_id == task_id))).all())
            for row in rows:
                await session.delete(row)
                await self.kernel.publish(session, self._event("attachments.deleted", row, None))
            await session.commit()
        for row in rows:
            await self.backend.delete(row.object_key)
        if rows:
            log.info("attachments.task_deleted", task_id=str(task_id), removed=len(rows))

    async def delete(self, task_id: uuid.UUID, attachment_id: uuid.UUID, actor: Principal | None) -> None:
        """Forget the attachment (publishing ``attachments.deleted``), then remove its object."""
        row = await self.get(task_id, attachment_id)
        async with self.kernel.db.session() as session:
            stored = await session.get(Attachment, row.id)
            if stored is None:
                raise NotFound(f"no attachment {attachment_id} on task {task_id}", slug="attachment-not-found")
            await session.delete(stored)
            await self.kernel.publish(session, self._event("attachments.deleted", row, actor))
            await session.commit()
        started = time.perf_counter()
        try:
            await self.backend.delete(row.object_key)
        except Exception:  # the row is gone; an orphaned object is harmless and logged
            log.exception("attachment.object_delete_failed", key=row.object_key)
        self.metrics.seconds.labels("delete").observe(time.perf_counter() - started)


def backend_for(kernel: Kernel, url: str) -> ObjectStorage | None:
    """The builtin backend serving ``url`` (``file://`` or ``s3://``), or ``None`` for other schemes."""
    parts = urlsplit(url)
    settings = kernel.plugin_config("storage") or StorageSettings.model_validate(
        kernel.settings.plugin_settings("storage")
    )
    if parts.scheme == "file":
        return FileBackend(Path(unquote(parts.netloc + parts.path)).expanduser().absolute())
    if parts.scheme == "s3":
        return S3Backend(url, settings)
    return None


async def start_storage(kernel: Kernel) -> None:
    """Open the configured backend and register ``storage`` and ``attachments`` services."""
    backend = kernel.pm.hook.storage_backend(kernel=kernel, url=kernel.settings.storage_url)
    if backend is None:
        raise RuntimeError(f"no plugin serves TD_STORAGE_URL scheme {kernel.settings.storage_url.split(':')[0]!r}")
    await backend.start()
    kernel.services["storage"] = backend
    settings = kernel.plugin_config("storage")
    kernel.services["attachments"] = AttachmentService(kernel, backend, settings, StorageMetrics(kernel.metrics))
    log.info("storage.ready", backend=backend.scheme)


async def stop_storage(kernel: Kernel) -> None:
    """Close the backend's connections."""
    backend = kernel.services.pop("storage", None)
    kernel.services.pop("attachments", None)
    if backend is not None:
        await backend.close()
