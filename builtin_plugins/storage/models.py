"""Tables of the storage plugin: attachment metadata (the bytes live in the storage backend)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no offset: restore it on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC) if value is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Attachment(SQLModel, table=True):
    """A file attached to a task. ``task_id`` names a row of the projects plugin's ``tasks`` table;
    it carries no foreign key so that each plugin's migrations stay independent."""

    __tablename__ = "attachments"
    __table_args__ = (
        sa.Index("ix_attachments_task_created", "task_id", "created_at", "id"),
        sa.UniqueConstraint("object_key", name="uq_attachments_object_key"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    task_id: uuid.UUID = Field(nullable=False)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    size: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    sha256: str = Field(max_length=64)
    object_key: str = Field(max_length=512)
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))


TABLES = (Attachment,)
