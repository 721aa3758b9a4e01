"""A database connection kept checked out by one bus worker, so hot loops skip pool round trips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.db import cancel_between_transactions


class DedicatedConnection:
    """One connection of ``engine``, opened on first use and replaced after any error. Transactions
    on it are serialized, so the worker's concurrent tasks can share it. A replaced or closed
    connection is closed for real, never returned to the pool, so session state such as advisory
    locks dies with it; ``generation`` counts the connections opened so far."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.generation = 0
        self._conn: AsyncConnection | None = None
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed when the block ends without an error."""
        async with self._lock:
            if self._conn is None:
                self._conn = await self.engine.connect()
                self.generation += 1
            try:
                async with self._conn.begin():
                    yield self._conn
            except BaseException:
                await self._discard()
                raise

    async def cancel_between_transactions(
        self, tasks: Collection[asyncio.Task[Any]], grace_seconds: float = 2.0
    ) -> None:
        """Cancel ``tasks``, which run transactions on this connection, while none of them is inside
        one (see :func:`kernel.db.cancel_between_transactions`)."""
        await cancel_between_transactions(self._lock, tasks, grace_seconds)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        """Close the connection for good (it is opened again on the next ``begin``)."""
        async with self._lock:
            await self._discard()
