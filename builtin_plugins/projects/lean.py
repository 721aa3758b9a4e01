"""The lean database path: a few connections lent out of the kernel's pool, SQL compiled once.

Checking a connection out of the SQLAlchemy pool costs three round trips on PostgreSQL (the pool's
pre-ping runs ``BEGIN; SELECT; ROLLBACK``), more than the query a hot read needs. So the plugin keeps
``size`` connections checked out for its lifetime and lends them per request: reads run prepared
statements straight on the driver connection (asyncpg, or aiosqlite), writes bind an ORM session to
the same connection. A connection that breaks is invalidated and replaced on the next lease.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession


@dataclass(frozen=True, slots=True)
class Statement:
    """SQL compiled for one dialect, with its parameters in positional order."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    @classmethod
    def compile(cls, statement: sa.ClauseElement, dialect: Dialect) -> Statement:
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        # Parameters the dialect adds itself (SQLite's OFFSET after a LIMIT) carry their own value.
        defaults = {name: compiled.binds[name].value for name in names if name in compiled.binds}
        return cls(str(compiled), names, defaults)

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] if name in params else self.defaults[name] for name in self.names]


@dataclass(slots=True)
class Lent:
    """One lent connection: the SQLAlchemy connection and its driver connection."""

    conn: AsyncConnection
    driver: Any
    prepared: dict[str, Any] = field(default_factory=dict)


def sqlite_value(value: Any) -> Any:
    """``value`` as SQLAlchemy's SQLite types store it: 32-hex UUIDs, naive UTC timestamps with
    microseconds (four-digit years, so they sort as text), ISO dates; anything else unchanged."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


class Lender:
    """Lends up to ``size`` connections, checked out of ``engine``'s pool once and kept."""

    def __init__(self, engine: AsyncEngine, size: int) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.size = size
        self._idle: asyncio.Queue[Lent] = asyncio.Queue()
        self._open = 0
        self._statements: dict[Any, Statement] = {}

    def statement(self, key: Any, build: Callable[[], sa.ClauseElement]) -> Statement:
        """The compiled statement cached under ``key`` (built and compiled on first use)."""
        found = self._statements.get(key)
        if found is None:
            found = self._statements[key] = Statement.compile(build(), self.dialect)
        return found

    async def _connect(self) -> Lent:
        conn = await self.engine.connect()
        raw = await conn.get_raw_connection()
        return Lent(conn, raw.driver_connection)

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Lent]:
        if self._idle.empty() and self._open < self.size:
            self._open += 1
            try:
                lent = await self._connect()
            except BaseException:
                self._open -= 1
                raise
        else:
            lent = await self._idle.get()
        try:
            yield lent
        except BaseException as exc:
            # A query cancelled half-way leaves the connection in an unknown state: replace it.
            if isinstance(exc, asyncio.CancelledError) or self._broken(lent):
                await self._discard(lent)
            else:
                self._idle.put_nowait(lent)
            raise
        self._idle.put_nowait(lent)

    def _broken(self, lent: Lent) -> bool:
        if lent.conn.closed or lent.conn.invalidated:
            return True
        is_closed = getattr(lent.driver, "is_closed", None)
        return bool(is_closed()) if is_closed is not None else False

    async def _discard(self, lent: Lent) -> None:
        self._open -= 1
        try:
            await lent.conn.invalidate()
            await lent.conn.close()
        except Exception:  # noqa: S110 - the connection is already gone; nothing to release
            pass

    async def close(self) -> None:
        """Give every idle connection back to the pool (call before the engine is disposed)."""
        while not self._idle.empty():
            lent = self._idle.get_nowait()
            self._open -= 1
            await lent.conn.close()

    # -- running statements ------------------------------------------------------------------------
    async def fetch(self, lent: Lent, statement: Statement, params: dict[str, Any]) -> list[Any]:
        """Rows of ``statement`` (tuples) run directly on the driver connection."""
        args = statement.arguments(params)
        if self.is_sqlite:
            cursor = await lent.driver.execute(statement.sql, [sqlite_value(a) for a in args])
            try:
                return list(await cursor.fetchall())
            finally:
                await cursor.close()
        prepared = lent.prepared.get(statement.sql)
        if prepared is None:
            prepared = lent.prepared[statement.sql] = await lent.driver.prepare(statement.sql)
        return await prepared.fetch(*args)

    async def fetchrow(self, lent: Lent, statement: Statement, params: dict[str, Any]) -> Any:
        rows = await self.fetch(lent, statement, params)
        return rows[0] if rows else None

    @asynccontextmanager
    async def consistent(self, lent: Lent) -> AsyncIterator[None]:
        """Several reads on ``lent`` that see one snapshot of the database (an export)."""
        if not self.is_sqlite:
            async with lent.driver.transaction(isolation="repeatable_read", readonly=True):
                yield
            return
        await (await lent.driver.execute("BEGIN")).close()
        try:
            yield
        finally:
            await (await lent.driver.execute("COMMIT")).close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """An ORM session on a lent connection, committed when the block ends without an error.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it holds the write lock from the
        first read, so read-then-write sequences (counters, cycle checks) cannot interleave."""
        async with self.lease() as lent:
            session = AsyncSession(bind=lent.conn, expire_on_commit=False, info={"lent": lent})
            try:
                if self.is_sqlite:
                    await session.execute(sa.text("BEGIN IMMEDIATE"))
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            finally:
                await session.close()

    async def run(self, session: AsyncSession, statement: Statement, params: dict[str, Any]) -> list[Any]:
        """Run ``statement`` inside ``session``'s transaction, on its driver connection.

        SQLAlchemy begins a PostgreSQL transaction lazily, with the first statement it executes; so a
        transaction's first statement goes through SQLAlchemy (which begins it) and the rest straight
        to the driver. JSON values must be passed serialized."""
        lent: Lent = session.info["lent"]
        if not self.is_sqlite and not lent.driver.is_in_transaction():
            conn = await session.connection()
            result = await conn.exec_driver_sql(statement.sql, tuple(statement.arguments(params)))
            return list(result) if result.returns_rows else []
        return await self.fetch(lent, statement, params)
