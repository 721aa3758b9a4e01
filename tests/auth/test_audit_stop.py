"""Stopping the audit writer never cuts its transaction in half: on SQLite, a connection dropped in
the middle of a write can keep the database locked for the rest of the process."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from builtin_plugins.auth.audit import ANONYMOUS, AuditLog
from builtin_plugins.auth.models import AuditEntry
from kernel.db import Database
from kernel.settings import Settings


async def test_stop_lets_the_running_write_finish(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    db = Database(Settings(data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{path}"))
    async with db.engine.begin() as conn:
        await conn.run_sync(AuditEntry.__table__.create)  # type: ignore[attr-defined]
    audit = AuditLog(db, linger_seconds=0)
    audit.start()
    # Another writer holds SQLite's write lock: the audit writer's INSERT waits inside its transaction.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    for number in range(5):
        await audit.defer(AuditLog.values(f"test.{number}", "success", ANONYMOUS))
    await asyncio.sleep(0.3)
    stopping = asyncio.create_task(audit.stop())
    await asyncio.sleep(0.3)  # the stop arrives while the write is still waiting
    blocker.execute("COMMIT")
    blocker.close()
    await asyncio.wait_for(stopping, 15)
    await db.dispose()

    # Every entry stored once, and the database takes a write from elsewhere at once.
    check = sqlite3.connect(path, timeout=0.5)
    try:
        actions = sorted(row[0] for row in check.execute("SELECT action FROM auth_audit_log"))
        check.execute("UPDATE auth_audit_log SET outcome = 'checked'")
        check.commit()
    finally:
        check.close()
    assert actions == [f"test.{n}" for n in range(5)]
