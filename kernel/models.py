"""Tables the kernel itself owns."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Text, UniqueConstraint, Uuid, text
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


class OutboxRow(SQLModel, table=True):
    """An event written in the same transaction as the state change it describes, waiting for the
    relay to publish it (``sent_at``) and for a consumer to store it (the row is deleted then)."""

    __tablename__ = "event_outbox"
    __table_args__ = (
        UniqueConstraint("id", name="uq_event_outbox_id"),
        Index(
            "ix_event_outbox_pending",
            "seq",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
        Index("ix_event_outbox_sent_at", "sent_at"),
        {"sqlite_autoincrement": True},  # seq values are never reused, even after rows are deleted
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    )
    id: UUID = Field(sa_column=Column(Uuid(), nullable=False))
    topic: str = Field(sa_column=Column(String(255), nullable=False))
    body: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


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
