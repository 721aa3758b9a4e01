"""Alembic, driven from code: one version location per plugin, one branch per plugin."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from kernel.db import Database
from kernel.errors import StartupError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
KERNEL_VERSIONS = MIGRATIONS_DIR / "versions"


def alembic_config(locations: Sequence[str | os.PathLike[str]]) -> Config:
    """An in-memory Alembic config whose version locations are the kernel's plus ``locations``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    paths = [str(KERNEL_VERSIONS), *(str(Path(p).resolve()) for p in locations)]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(dict.fromkeys(paths)))
    return cfg


class Migrator:
    """Upgrade, downgrade and inspect the schema of one database."""

    def __init__(self, db: Database, locations: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.db = db
        self.config = alembic_config(locations)
        self.script = ScriptDirectory.from_config(self.config)

    def heads(self) -> set[str]:
        return set(self.script.get_heads())

    async def _run(self, fn: Any, *args: Any) -> Any:
        def run(connection: Connection) -> Any:
            self.config.attributes["connection"] = connection
            return fn(*args)

        async with self.db.engine.begin() as conn:
            return await conn.run_sync(run)

    async def current(self) -> set[str]:
        """Revisions the database is at (empty for a fresh database)."""

        def read(connection: Connection) -> set[str]:
            return set(MigrationContext.configure(connection).get_current_heads())

        async with self.db.engine.connect() as conn:
            return await conn.run_sync(read)

    def _known(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except CommandError:
            return False

    async def pending(self) -> list[str]:
        """Revisions between the database and the heads, oldest first."""
        current = await self.current()
        unknown = sorted(rev for rev in current if not self._known(rev))
        if unknown:
            raise StartupError(
                f"the database holds migrations no installed plugin provides ({', '.join(unknown)}); reinstall "
                "the plugin, or downgrade its branch (`taylordash db downgrade <plugin>@base`) before removing it"
            )
        applied: set[str] = set()
        for rev in current:
            applied.update(r.revision for r in self.script.iterate_revisions(rev, "base"))
        return [r.revision for r in reversed(list(self.script.walk_revisions())) if r.revision not in applied]

    async def upgrade(self, target: str = "heads") -> None:
        await self._run(command.upgrade, self.config, target)

    async def downgrade(self, target: str) -> None:
        await self._run(command.downgrade, self.config, target)
