"""The object-storage interface other plugins use (``kernel.services["storage"]``) and the
``file://`` backend, the embedded default."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol, runtime_checkable

from builtin_plugins.storage.streams import BLOCK, read_file, reblock
from kernel.errors import TaylorDashError

TMP_DIR = ".tmp"


class StorageError(TaylorDashError):
    """The storage backend failed or refused an operation."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """A stored object: its key and size in bytes."""

    key: str
    size: int


@runtime_checkable
class ObjectStorage(Protocol):
    """What every storage backend offers. Keys are ``/``-separated relative names
    (``attachments/<task>/<id>``); data always travels as async byte streams."""

    scheme: str

    async def start(self) -> None:
        """Prepare the backend (create the folder or bucket); called once at start-up."""

    async def close(self) -> None:
        """Release connections."""

    async def check(self) -> None:
        """Raise unless the backend is usable (readiness check)."""

    async def put(self, key: str, chunks: AsyncIterable[bytes], content_type: str) -> int:
        """Store the stream under ``key`` (replacing any object there); return the bytes written.
        If the stream raises, nothing is stored and the exception propagates."""

    def read(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object's bytes; raises :class:`ObjectNotFound` on first iteration."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size of the object; raises :class:`ObjectNotFound`."""

    async def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""

    async def presigned_url(self, key: str, expires: timedelta, filename: str, content_type: str) -> str | None:
        """A URL a browser can download the object from directly, or ``None`` if the backend has none."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise :class:`StorageError`."""
    path = PurePosixPath(key)
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise StorageError(f"invalid object key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")) or path.parts[0] == TMP_DIR:
        raise StorageError(f"invalid object key {key!r}")
    return key


class FileBackend:
    """Objects as files under one folder. Writes go to a temporary file that is renamed into place
    once complete and synced, so a reader never sees half an object."""

    scheme = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def start(self) -> None:
        await asyncio.to_thread((self.root / TMP_DIR).mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    async def check(self) -> None:
        if not await asyncio.to_thread(os.access, self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")

    async def put(self, key: str, chunks: AsyncIterable[bytes], content_type: str) -> int:
        target = self._path(key)
        temp = self.root / TMP_DIR / uuid.uuid4().hex
        handle = await asyncio.to_thread(temp.open, "wb")
        written = 0
        try:
            async for block in reblock(chunks, BLOCK):
                await asyncio.to_thread(handle.write, block)
                written += len(block)
            await asyncio.to_thread(_sync_and_close, handle)
            await asyncio.to_thread(_move_into_place, temp, target)
        except BaseException:
            await asyncio.to_thread(_discard, handle, temp)
            raise
        return written

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            async for block in read_file(lambda: path.open("rb")):
                yield block
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def stat(self, key: str) -> ObjectInfo:
        try:
            result = await asyncio.to_thread(self._path(key).stat)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return ObjectInfo(key, result.st_size)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._scan, prefix):
            yield info

    def _scan(self, prefix: str) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != TMP_DIR]
            for name in filenames:
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(ObjectInfo(key, path.stat().st_size))
        return sorted(found, key=lambda info: info.key)

    async def presigned_url(self, key: str, expires: timedelta, filename: str, content_type: str) -> str | None:
        return None


def _sync_and_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _move_into_place(temp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, target)


def _discard(handle: BinaryIO, temp: Path) -> None:
    handle.close()
    temp.unlink(missing_ok=True)
