"""Recognise a scan target and unpack archives without trusting them.

Every member name is checked before anything is written: no absolute paths, no ``..``, no drive
letters, no device files; links are refused when they point out of the archive and skipped otherwise
(their target is scanned in its own right). Sizes are counted while decompressing, not taken from the
headers, so a zip bomb stops at the cap.
"""

from __future__ import annotations

import gzip
import posixpath
import shutil
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from sandbox.scanner.errors import UnusableInput


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps applied while unpacking one archive."""

    max_files: int = 10_000
    max_total_bytes: int = 256 * 1024 * 1024
    max_file_bytes: int = 64 * 1024 * 1024
    max_ratio: int = 200
    """Largest uncompressed/compressed ratio of one zip member larger than 1 MiB."""


DEFAULT_LIMITS = Limits()
CHUNK = 1024 * 1024


def target_kind(path: Path) -> str:
    """``folder``, ``wheel``, ``sdist`` or ``zip``; raises :class:`UnusableInput` otherwise."""
    if not path.exists():
        raise UnusableInput(f"{path}: no such file or directory")
    if path.is_dir():
        return "folder"
    name = path.name.lower()
    if name.endswith(".whl"):
        return "wheel"
    if name.endswith((".tar.gz", ".tgz")):
        return "sdist"
    if name.endswith(".zip"):
        return "zip"
    raise UnusableInput(f"{path}: not a folder, wheel (.whl), sdist (.tar.gz) or zip")


def _safe_member(name: str) -> str:
    """The normalised relative path of an archive member, or :class:`UnusableInput`."""
    if "\x00" in name:
        raise UnusableInput(f"member {name!r} has a NUL byte in its name")
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise UnusableInput(f"member {name!r} has an absolute path")
    normal = posixpath.normpath(cleaned)
    if normal == ".." or normal.startswith("../") or "/../" in f"/{cleaned}/":
        raise UnusableInput(f"member {name!r} escapes the archive (path traversal)")
    return "" if normal == "." else normal


def _link_stays_inside(member: str, target: str) -> bool:
    if target.startswith("/") or "\\" in target or (len(target) > 1 and target[1] == ":"):
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member), target))
    return resolved != ".." and not resolved.startswith("../")


class _Budget:
    def __init__(self, limits: Limits, archive: Path) -> None:
        self.limits = limits
        self.archive = archive
        self.files = 0
        self.total = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnusableInput(f"{self.archive}: more than {self.limits.max_files} files (archive bomb?)")

    def copy(self, source: IO[bytes], dest: Path, member: str) -> None:
        written = 0
        with dest.open("wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                self.total += len(chunk)
                if written > self.limits.max_file_bytes:
                    raise UnusableInput(
                        f"{self.archive}: member {member!r} exceeds {self.limits.max_file_bytes} bytes (zip bomb?)"
                    )
                if self.total > self.limits.max_total_bytes:
                    raise UnusableInput(
                        f"{self.archive}: unpacks to more than {self.limits.max_total_bytes} bytes (zip bomb?)"
                    )
                out.write(chunk)


def _destination(root: Path, relative: str) -> Path:
    dest = root.joinpath(*PurePosixPath(relative).parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.is_dir():
        raise UnusableInput(f"member {relative!r} is duplicated or clashes with a directory")
    return dest


def _unpack_zip(archive: Path, root: Path, limits: Limits) -> None:
    budget = _Budget(limits, archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > limits.max_files:
                raise UnusableInput(f"{archive}: {len(members)} members, more than {limits.max_files}")
            for info in members:
                relative = _safe_member(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    target = zf.read(info)[:4096].decode("utf-8", "replace")
                    if not _link_stays_inside(relative, target):
                        raise UnusableInput(f"{archive}: symlink {info.filename!r} points out of the archive")
                    continue
                if not relative or info.is_dir():  # an empty name has no last character to test
                    continue
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                    raise UnusableInput(f"{archive}: member {info.filename!r} is not a regular file")
                if (
                    info.file_size > CHUNK
                    and info.compress_size
                    and info.file_size / info.compress_size > limits.max_ratio
                ):
                    raise UnusableInput(
                        f"{archive}: member {info.filename!r} compresses {info.file_size // info.compress_size}:1 "
                        "(zip bomb?)"
                    )
                budget.add_file()
                with zf.open(info) as source:
                    budget.copy(source, _destination(root, relative), info.filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise UnusableInput(f"{archive}: not a readable zip archive ({exc})") from None
    except UnicodeDecodeError:  # a header that flags its name as UTF-8 when it is not
        raise UnusableInput(f"{archive}: not a readable zip archive (a member name is not valid UTF-8)") from None
    except NotImplementedError as exc:
        raise UnusableInput(f"{archive}: unsupported zip feature ({exc})") from None


def _unpack_tar(archive: Path, root: Path, limits: Limits) -> None:
    budget = _Budget(limits, archive)
    try:
        with tarfile.open(archive, mode="r:*") as tf:
            count = 0
            for member in tf:
                count += 1
                if count > limits.max_files * 2:
                    raise UnusableInput(f"{archive}: more than {limits.max_files} members (archive bomb?)")
                relative = _safe_member(member.name)
                if member.issym() or member.islnk():
                    inside = (
                        _link_stays_inside(relative, member.linkname)
                        if member.issym()
                        else not _safe_member(member.linkname).startswith("..")
                    )
                    if not inside:
                        raise UnusableInput(f"{archive}: link {member.name!r} points out of the archive")
                    continue
                if member.isdir() or not relative:
                    continue
                if not member.isfile():
                    raise UnusableInput(f"{archive}: member {member.name!r} is a device, FIFO or other special file")
                budget.add_file()
                source = tf.extractfile(member)
                if source is None:
                    raise UnusableInput(f"{archive}: member {member.name!r} cannot be read")
                with source:
                    budget.copy(source, _destination(root, relative), member.name)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise UnusableInput(f"{archive}: not a readable tar archive ({exc})") from None


def unpack(archive: Path, kind: str, dest: Path, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Unpack ``archive`` into the empty folder ``dest`` and return the package root: the single
    top-level folder of an sdist (``name-version/``), else ``dest`` itself."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "sdist":
            _unpack_tar(archive, dest, limits)
        else:
            _unpack_zip(archive, dest, limits)
    except UnusableInput as exc:
        shutil.rmtree(dest, ignore_errors=True)
        # One line that names the archive, whatever raised it (a member check, a parser's message).
        message = " ".join(str(exc).split())
        raise UnusableInput(message if message.startswith(f"{archive}:") else f"{archive}: {message}") from None
    except OSError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise UnusableInput(f"{archive}: cannot unpack ({exc.strerror or exc})") from None
    except (zlib.error, EOFError) as exc:  # a member whose compressed data is corrupt or cut short
        shutil.rmtree(dest, ignore_errors=True)
        raise UnusableInput(f"{archive}: cannot unpack (corrupt compressed data: {exc})") from None
    entries = list(dest.iterdir())
    if kind == "sdist" and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest
