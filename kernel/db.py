"""Async database access: one engine per process for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from kernel.settings import Settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


async def cancel_between_transactions(
    lock: asyncio.Lock, tasks: Collection[asyncio.Task[Any]], grace_seconds: float = 2.0
) -> None:
    """Cancel background ``tasks`` whose transactions all run while holding ``lock``, at a moment
    none of them is inside one: wait (up to ``grace_seconds``) for the running transaction to end,
    hold the lock, cancel, then wait for the tasks to finish.

    A task cancelled half-way through a statement leaves its connection to be dropped, and on SQLite
    a connection dropped mid-transaction can keep the database locked for the rest of the process.
    Past ``grace_seconds`` (a database that stopped answering) the tasks are cancelled anyway; the
    lock is released before waiting for the last of them, in case one needs it to clean up."""
    tasks = [task for task in tasks if not task.done()]
    if not tasks:
        return
    held = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(grace_seconds):
            await lock.acquire()
            held = True
    try:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=grace_seconds)
    finally:
        if held:
            lock.release()
    await asyncio.gather(*tasks, return_exceptions=True)


class Database:
    """The engine, a session factory, and the facts about the backend that callers branch on."""

    def __init__(self, settings: Settings) -> None:
        url = make_url(settings.database_url)
        self.url = url
        self.dialect = url.get_backend_name()
        options: dict[str, Any] = {"echo": settings.db_echo}
        if self.dialect == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                pool_recycle=1800,
                pool_pre_ping=True,
            )
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def session(self) -> AsyncSession:
        """A new ORM session; use as ``async with db.session() as s: …``."""
        return self.sessionmaker()

    async def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
