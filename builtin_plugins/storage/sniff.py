"""Content-type detection from an upload's first bytes; the client's declared type is not trusted."""

from __future__ import annotations

import mimetypes
import re

import filetype

SNIFF_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
_TEXTUAL = frozenset({"application/json", "application/xml", "application/x-yaml", "application/yaml"})
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


def looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a multi-byte character cut at the end of ``head`` is allowed)."""
    if b"\x00" in head:
        return False
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def sniff_content_type(head: bytes, filename: str) -> str:
    """The media type of a file starting with ``head``: magic numbers first; for text, the type the
    file name suggests if it is a textual one, else ``text/plain``; otherwise octet-stream."""
    kind = filetype.guess(head[:SNIFF_BYTES]) if head else None
    if kind is not None:
        return str(kind.mime)
    if head and looks_like_text(head[:SNIFF_BYTES]):
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        if guessed and (guessed.startswith("text/") or guessed in _TEXTUAL):
            return guessed
        return "text/plain"
    return OCTET_STREAM


def clean_filename(raw: str) -> str:
    """The last path segment of a client-given file name, without control characters, ≤ 255 chars."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("", name).strip()
    return name[:255] if name not in ("", ".", "..") else "file"
