"""Where uploaded packages live: ``<data dir>/plugins/quarantine/<upload id>/<file name>``.

Packages stay in quarantine for their whole life: they are untrusted input that only the scanner
reads and only the sandbox runner unpacks. File work runs in a thread, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from kernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

SUFFIXES = (".whl", ".tar.gz", ".tgz", ".zip")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
CHUNK = 1024 * 1024


def safe_filename(filename: str | None) -> str:
    """The base name of an uploaded file, reduced to safe characters; 415 unless it is a package."""
    name = _UNSAFE.sub("_", Path((filename or "").replace("\\", "/")).name).strip("._")
    if not name:
        raise BadRequest("the upload has no file name", slug="missing-filename")
    if not name.lower().endswith(SUFFIXES):
        raise UnsupportedMediaType(
            f"{name!r} is not a wheel (.whl), an sdist (.tar.gz) or a zip", slug="unsupported-package"
        )
    return name[-200:]


class PackageStore:
    """The quarantine folder of uploaded packages."""

    def __init__(self, data_dir: Path, max_bytes: int) -> None:
        self.root = data_dir / "plugins" / "quarantine"
        self.max_bytes = max_bytes

    async def save(self, chunks: AsyncIterator[bytes], filename: str) -> tuple[Path, str, int]:
        """Write ``chunks`` into a new quarantine folder: ``(path, sha256, size)``; 413 past the cap,
        and nothing left behind by a refused or broken upload."""
        folder = self.root / uuid.uuid4().hex
        await asyncio.to_thread(folder.mkdir, parents=True, mode=0o700)
        target = folder / filename
        digest = hashlib.sha256()
        size = 0
        try:
            out = await asyncio.to_thread(target.open, "xb")
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise PayloadTooLarge(f"the package exceeds {self.max_bytes} bytes")
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
            finally:
                await asyncio.to_thread(out.close)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        return target, digest.hexdigest(), size

    async def save_path(self, path: Path) -> tuple[Path, str, int]:
        """Copy the file at ``path`` (command-line installs) into quarantine."""
        filename = safe_filename(path.name)

        async def chunks() -> AsyncIterator[bytes]:
            source = await asyncio.to_thread(path.open, "rb")
            try:
                while chunk := await asyncio.to_thread(source.read, CHUNK):
                    yield chunk
            finally:
                await asyncio.to_thread(source.close)

        return await self.save(chunks(), filename)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    async def delete(self, relative: str | None) -> None:
        """Remove a stored package and its folder."""
        if relative:
            folder = (self.root / relative).parent
            await asyncio.to_thread(shutil.rmtree, folder, True)
