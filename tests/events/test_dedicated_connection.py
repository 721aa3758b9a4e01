"""Stopping the bus's workers never cuts a transaction on their dedicated connection in half."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kernel.bus.connection import DedicatedConnection


async def test_workers_are_cancelled_between_transactions(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'bus.db'}")
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE rows (batch INTEGER, part INTEGER)"))
    dedicated = DedicatedConnection(engine)
    inside = asyncio.Event()

    async def worker() -> None:
        batch = 0
        while True:
            batch += 1
            async with dedicated.begin() as conn:
                await conn.execute(sa.text("INSERT INTO rows VALUES (:b, 1)"), {"b": batch})
                inside.set()
                await asyncio.sleep(0.2)  # the transaction is open when the stop arrives
                await conn.execute(sa.text("INSERT INTO rows VALUES (:b, 2)"), {"b": batch})

    task = asyncio.create_task(worker())
    await inside.wait()
    await dedicated.cancel_between_transactions([task])
    assert task.cancelled()
    await dedicated.close()
    # The open transaction finished: its rows are there, both of them, and the database takes writes.
    async with engine.begin() as conn:
        rows = (await conn.execute(sa.text("SELECT batch, part FROM rows ORDER BY batch, part"))).all()
        await conn.execute(sa.text("INSERT INTO rows VALUES (0, 0)"))
    await engine.dispose()
    assert [tuple(r) for r in rows] == [(1, 1), (1, 2)]
