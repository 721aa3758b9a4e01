"""Backups: the database (``pg_dump`` for PostgreSQL, SQLite's online backup API) plus every stored
object, as one tar archive written to the storage backend under ``backups/``; and their restore."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.engine import URL

from builtin_plugins.storage.backends import ObjectInfo, ObjectStorage, StorageError
from builtin_plugins.storage.config import StorageSettings
from builtin_plugins.storage.streams import SyncReader, read_file
from kernel import __version__

log = structlog.get_logger("taylordash.storage.backup")
PREFIX = "backups/"
FORMAT = 1
MANIFEST = "manifest.json"
OBJECTS_DIR = "objects/"


class BackupError(StorageError):
    """A backup cannot be made or restored."""


@dataclass(frozen=True, slots=True)
class BackupResult:
    """What a backup or restore covered."""

    key: str
    dialect: str
    objects: int
    object_bytes: int


def _binary(name: str, settings: StorageSettings) -> str:
    if settings.pg_bin_dir is not None:
        return str(settings.pg_bin_dir / name)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if candidates:
        return str(candidates[-1])
    raise BackupError(f"{name} not found: install the PostgreSQL client or set TD_PLUGINS__STORAGE__PG_BIN_DIR")


def _libpq(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, the password passed in the environment."""
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432), "--dbname", url.database or ""]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


async def _run(command: list[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed ({process.returncode}): {stderr.decode().strip()}")


def _sqlite_copy(source: str, target: str) -> None:
    """Copy one SQLite database onto another with the online backup API (consistent while in use)."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class BackupManager:
    """Creates and restores backups of one deployment (its database URL and storage backend)."""

    def __init__(self, database_url: URL, backend: ObjectStorage, settings: StorageSettings, work_dir: Path) -> None:
        self.url = database_url
        self.dialect = database_url.get_backend_name()
        self.backend = backend
        self.settings = settings
        self.work_dir = work_dir

    async def _dump_database(self, target: Path) -> None:
        if self.dialect == "sqlite":
            await asyncio.to_thread(_sqlite_copy, str(self.url.database), str(target))
            return
        args, env = _libpq(self.url)
        await _run(
            [_binary("pg_dump", self.settings), "--format=custom", "--no-owner", *args, "--file", str(target)], env
        )

    async def _restore_database(self, dump: Path) -> None:
        if self.dialect == "sqlite":
            await asyncio.to_thread(_sqlite_copy, str(dump), str(self.url.database))
            return
        args, env = _libpq(self.url)
        restore = _binary("pg_restore", self.settings)
        await _run([restore, "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(dump)], env)

    def _objects(self) -> AsyncIterator[ObjectInfo]:
        return self.backend.list("")

    async def create(self, now: datetime | None = None) -> BackupResult:
        """Write a new backup archive to the backend; returns its key."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
        key = f"{PREFIX}taylordash-{stamp}.tar"
        loop = asyncio.get_running_loop()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="backup-") as tmp:
            dump = Path(tmp) / "database"
            await self._dump_database(dump)
            archive = Path(tmp) / "backup.tar"
            tar = await asyncio.to_thread(tarfile.open, archive, "w")
            count = total = 0
            try:
                await asyncio.to_thread(tar.add, dump, "database")
                async for info in self._objects():
                    if info.key.startswith(PREFIX):
                        continue
                    member = tarfile.TarInfo(OBJECTS_DIR + info.key)
                    member.size = info.size
                    member.mtime = int(datetime.now(UTC).timestamp())
                    reader = SyncReader(self.backend.read(info.key), loop)
                    await asyncio.to_thread(tar.addfile, member, reader)
                    count += 1
                    total += info.size
                manifest = {
                    "format": FORMAT,
                    "created_at": datetime.now(UTC).isoformat(),
                    "taylordash_version": __version__,
                    "dialect": self.dialect,
                    "objects": count,
                    "object_bytes": total,
                }
                await asyncio.to_thread(_add_json, tar, MANIFEST, manifest)
            finally:
                await asyncio.to_thread(tar.close)
            await self.backend.put(key, read_file(lambda: archive.open("rb")), "application/x-tar")
        log.info("backup.created", key=key, objects=count, object_bytes=total)
        return BackupResult(key, self.dialect, count, total)

    async def list(self) -> list[ObjectInfo]:
        """Backups in the backend, oldest first."""
        return [info async for info in self.backend.list(PREFIX)]

    async def restore(self, key: str, prune: bool = True) -> BackupResult:
        """Replace the database and objects with the backup's. With ``prune``, objects stored since the
        backup are removed (nothing would refer to them). Stop every server first."""
        if not key.startswith(PREFIX):
            key = PREFIX + key
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix="restore-") as tmp:
            archive = Path(tmp) / "backup.tar"
            handle = await asyncio.to_thread(archive.open, "wb")
            try:
                async for block in self.backend.read(key):
                    await asyncio.to_thread(handle.write, block)
            finally:
                await asyncio.to_thread(handle.close)
            tar = await asyncio.to_thread(tarfile.open, archive, "r")
            try:
                manifest = await asyncio.to_thread(_read_json, tar, MANIFEST)
                if manifest.get("format") != FORMAT:
                    raise BackupError(f"{key}: unknown backup format {manifest.get('format')!r}")
                if manifest.get("dialect") != self.dialect:
                    raise BackupError(f"{key} holds a {manifest.get('dialect')} database; this one is {self.dialect}")
                dump = Path(tmp) / "database"
                await asyncio.to_thread(_extract_to, tar, "database", dump)
                await self._restore_database(dump)
                restored = await self._restore_objects(tar, prune)
            finally:
                await asyncio.to_thread(tar.close)
        log.info("backup.restored", key=key, objects=restored[0])
        return BackupResult(key, self.dialect, *restored)

    async def _restore_objects(self, tar: tarfile.TarFile, prune: bool) -> tuple[int, int]:
        members = await asyncio.to_thread(tar.getmembers)
        wanted = {m.name[len(OBJECTS_DIR) :]: m for m in members if m.isfile() and m.name.startswith(OBJECTS_DIR)}
        if prune:
            async for info in self._objects():
                if not info.key.startswith(PREFIX) and info.key not in wanted:
                    await self.backend.delete(info.key)
        total = 0
        for key, member in wanted.items():
            source = await asyncio.to_thread(tar.extractfile, member)
            if source is None:
                continue
            await self.backend.put(key, _read_member(source), "application/octet-stream")
            total += member.size
        return len(wanted), total


async def _read_member(source: Any) -> AsyncIterator[bytes]:
    while True:
        block = await asyncio.to_thread(source.read, 1024 * 1024)
        if not block:
            return
        yield block


def _add_json(tar: tarfile.TarFile, name: str, data: dict[str, Any]) -> None:
    raw = json.dumps(data, indent=2).encode()
    member = tarfile.TarInfo(name)
    member.size = len(raw)
    member.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(member, io.BytesIO(raw))


def _read_json(tar: tarfile.TarFile, name: str) -> dict[str, Any]:
    try:
        source = tar.extractfile(name)
    except KeyError:
        raise BackupError(f"not a TaylorDash backup: no {name}") from None
    if source is None:
        raise BackupError(f"not a TaylorDash backup: {name} is not a file")
    return json.loads(source.read())


def _extract_to(tar: tarfile.TarFile, name: str, target: Path) -> None:
    source = tar.extractfile(name)
    if source is None:
        raise BackupError(f"backup member {name} is not a file")
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
