"""Tables the kernel itself owns."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel, select

from kernel.db import Database


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class PluginState(SQLModel, table=True):
    """Whether an operator enabled or disabled a plugin; plugins without a row are enabled."""

    __tablename__ = "plugin_state"

    name: str = Field(primary_key=True, max_length=200)
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


async def disabled_plugins(db: Database) -> set[str]:
    """Names of the plugins an operator has disabled."""
    async with db.session() as session:
        rows = await session.exec(select(PluginState.name).where(PluginState.enabled == False))  # noqa: E712
        return set(rows.all())


async def set_plugin_enabled(db: Database, name: str, enabled: bool) -> None:
    """Persist the operator's choice for plugin ``name`` (takes effect at the next start)."""
    async with db.session() as session:
        row = await session.get(PluginState, name)
        if row is None:
            row = PluginState(name=name, enabled=enabled)
        else:
            row.enabled = enabled
            row.updated_at = utcnow()
        session.add(row)
        await session.commit()
