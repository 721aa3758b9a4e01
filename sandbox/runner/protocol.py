"""Frames exchanged between the kernel and a sandbox worker over the worker's stdin and stdout.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON. Both ends refuse a
frame longer than the agreed cap, so a runaway plugin cannot make the kernel buffer unbounded output.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:  # the worker never imports asyncio: it would only slow its start
    import asyncio

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 4 * 1024 * 1024


class FrameTooLarge(Exception):
    """A frame announced more bytes than the cap allows."""


class ChannelClosed(Exception):
    """The other end closed the pipe (the worker exited or the kernel went away)."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=False, default=str).encode()
    return HEADER.pack(len(body)) + body


def _decode(body: bytes) -> dict[str, Any]:
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message


# -- the worker's side: blocking reads and writes on plain file objects ------------------------------
def read_frame(stream: BinaryIO, max_bytes: int = DEFAULT_MAX_FRAME) -> dict[str, Any]:
    header = _read_exactly(stream, HEADER.size)
    (size,) = HEADER.unpack(header)
    if size > max_bytes:
        raise FrameTooLarge(f"frame of {size} bytes exceeds {max_bytes}")
    return _decode(_read_exactly(stream, size))


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            raise ChannelClosed("end of stream")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_frame(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode(message))
    stream.flush()


# -- the kernel's side: asyncio streams ---------------------------------------------------------------
async def aread_frame(reader: asyncio.StreamReader, max_bytes: int = DEFAULT_MAX_FRAME) -> dict[str, Any]:
    import asyncio

    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        if size > max_bytes:
            raise FrameTooLarge(f"frame of {size} bytes exceeds {max_bytes}")
        return _decode(await reader.readexactly(size))
    except asyncio.IncompleteReadError:
        raise ChannelClosed("the worker closed its output") from None


async def awrite_frame(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    try:
        writer.write(encode(message))
        await writer.drain()
    except (BrokenPipeError, ConnectionResetError) as exc:
        raise ChannelClosed(f"the worker closed its input: {exc}") from None
