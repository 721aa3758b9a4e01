"""A plugin with its own migration branch, used to test per-plugin branches."""

from __future__ import annotations

from pathlib import Path

from sdk import hookimpl

MIGRATIONS = Path(__file__).parent / "migrations"


@hookimpl
def register_migrations() -> str:
    return str(MIGRATIONS)
