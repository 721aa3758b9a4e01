"""The registry of MCP servers TaylorDash manages. Same schema on SQLite and PostgreSQL (JSONB there)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
TRANSPORTS = ("stdio", "http")
DESIRED = ("running", "stopped")


class Timestamp(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no offset: restored on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class McpServerRow(SQLModel, table=True):
    """One MCP server: a command to run (stdio) or a URL to connect to (streamable HTTP).

    ``env`` and ``headers`` are stored encrypted (a Fernet token of the JSON object), never in clear.
    ``allowed_tools`` is the admin's allow list (``null``: every tool the server offers).
    ``desired`` is what an administrator asked for; running instances reconcile to it."""

    __tablename__ = "mcp_servers"
    __table_args__ = (
        sa.UniqueConstraint("name", name="uq_mcp_servers_name"),
        sa.CheckConstraint("transport IN ('stdio', 'http')", name="ck_mcp_servers_transport"),
        sa.CheckConstraint("desired IN ('running', 'stopped')", name="ck_mcp_servers_desired"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid(), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    transport: str = Field(sa_column=sa.Column(sa.String(10), nullable=False))
    command: str | None = Field(default=None, sa_column=sa.Column(sa.String(1000), nullable=True))
    args: list[str] = Field(default_factory=list, sa_column=sa.Column(JSONDocument, nullable=False))
    env_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    url: str | None = Field(default=None, sa_column=sa.Column(sa.String(2000), nullable=True))
    headers_encrypted: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    allowed_tools: list[str] | None = Field(default=None, sa_column=sa.Column(JSONDocument, nullable=True))
    autostart: bool = Field(default=True, sa_column=sa.Column(sa.Boolean(), nullable=False))
    desired: str = Field(default="stopped", sa_column=sa.Column(sa.String(10), nullable=False))
    call_timeout_seconds: float | None = Field(default=None, sa_column=sa.Column(sa.Float(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Timestamp(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(Timestamp(), nullable=False))


TABLES = (McpServerRow,)
