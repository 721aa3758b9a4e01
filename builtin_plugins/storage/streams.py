"""Byte-stream plumbing: re-blocking async streams and bridging them to blocking readers in threads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import BinaryIO

BLOCK = 1024 * 1024
"""Bytes handed to a backend at a time: large enough to keep thread hops rare, small enough to not matter."""


async def reblock(chunks: AsyncIterable[bytes], size: int = BLOCK) -> AsyncIterator[bytes]:
    """Yield ``chunks`` regrouped into blocks of ``size`` bytes (the last one may be shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


async def read_file(path_opener: Callable[[], BinaryIO], size: int = BLOCK) -> AsyncIterator[bytes]:
    """Stream a file opened by ``path_opener`` (called in a thread) in blocks, reading in a thread."""
    handle = await asyncio.to_thread(path_opener)
    try:
        while True:
            block = await asyncio.to_thread(handle.read, size)
            if not block:
                return
            yield block
    finally:
        await asyncio.to_thread(handle.close)


class SyncReader:
    """A blocking ``read(n)`` file object over an async byte stream, for code running in a worker
    thread (minio's ``put_object``, ``tarfile``). Each read pulls from the stream on ``loop``; an
    exception raised by the stream surfaces from ``read`` in the thread.

    With ``exact`` a read returns ``n`` bytes unless the stream ends (what ``tarfile`` needs);
    without it a read returns what one pull brings, at most ``n`` bytes, without copying whole
    chunks (callers that loop until they have enough, like minio, then hold fewer copies).
    """

    def __init__(self, chunks: AsyncIterable[bytes], loop: asyncio.AbstractEventLoop, exact: bool = True) -> None:
        self._iterator = chunks.__aiter__()
        self._loop = loop
        self._exact = exact
        self._pending = b""
        self._eof = False
        self.bytes_read = 0

    def _pull(self) -> bytes:
        future = asyncio.run_coroutine_threadsafe(self._next(), self._loop)
        chunk = future.result()
        if chunk is None:
            self._eof = True
            return b""
        return chunk

    async def _next(self) -> bytes | None:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left for a negative size); ``b""`` at the end."""
        pieces = [self._pending] if self._pending else []
        held = len(self._pending)
        self._pending = b""
        while not self._eof and (size < 0 or held < size) and (self._exact or size < 0 or not pieces):
            chunk = self._pull()
            if chunk:
                pieces.append(chunk)
                held += len(chunk)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if 0 <= size < len(data):
            data, self._pending = data[:size], data[size:]
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True
