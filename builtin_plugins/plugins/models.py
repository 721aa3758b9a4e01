"""Tables of the plugin registry. Same schema on SQLite and PostgreSQL (JSONB there)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

STATUSES = ("uploaded", "scanned", "enabled", "disabled", "quarantined", "removed")


def utcnow() -> datetime:
    return datetime.now(UTC)


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


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def _when(nullable: bool = False, index: bool = False) -> Any:
    column = sa.Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


class PluginRow(SQLModel, table=True):
    """An uploaded plugin: its package, manifest, latest scan and place in the lifecycle."""

    __tablename__ = "plugins"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid(), primary_key=True))
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    version: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    type: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    description: str = Field(default="", sa_column=sa.Column(sa.String(500), nullable=False))
    author: str = Field(default="", sa_column=sa.Column(sa.String(200), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(20), nullable=False, index=True))
    verdict: str | None = Field(default=None, sa_column=sa.Column(sa.String(10), nullable=True))
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))
    scan_report: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))
    filename: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    package_path: str | None = Field(default=None, sa_column=sa.Column(sa.String(500), nullable=True))
    package_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    package_size: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    violations_count: int = Field(default=0, sa_column=sa.Column(sa.Integer(), nullable=False))
    override_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    override_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    override_at: datetime | None = _when(nullable=True)
    uploaded_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    created_at: datetime = _when()
    updated_at: datetime = _when()
    scanned_at: datetime | None = _when(nullable=True)


class PluginConfiguration(SQLModel, table=True):
    """The operator's configuration of one plugin, validated against its manifest's JSON schema."""

    __tablename__ = "plugin_configurations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid(), primary_key=True))
    plugin_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    config: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))
    revision: int = Field(default=1, sa_column=sa.Column(sa.Integer(), nullable=False))
    updated_by: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    updated_at: datetime = _when()


class PluginApiAccess(SQLModel, table=True):
    """One permission a plugin declared (or asked for), whether the sandbox API currently grants it,
    and the tally of its ``api`` calls: the sandbox adds each call's outcome and duration in batches."""

    __tablename__ = "plugin_api_access"
    __table_args__ = (sa.UniqueConstraint("plugin_id", "permission", name="uq_plugin_api_access_permission"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid(), primary_key=True))
    plugin_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    permission: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))
    granted: bool = Field(default=False, sa_column=sa.Column(sa.Boolean(), nullable=False))
    updated_at: datetime = _when()
    calls: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False, server_default="0"))
    refused: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False, server_default="0"))
    failed: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False, server_default="0"))
    total_ms: float = Field(default=0.0, sa_column=sa.Column(sa.Float(), nullable=False, server_default="0"))
    max_ms: float = Field(default=0.0, sa_column=sa.Column(sa.Float(), nullable=False, server_default="0"))
    last_outcome: str | None = Field(default=None, sa_column=sa.Column(sa.String(20), nullable=True))
    last_method: str | None = Field(default=None, sa_column=sa.Column(sa.String(100), nullable=True))
    last_called_at: datetime | None = _when(nullable=True)


class PluginKV(SQLModel, table=True):
    """The private key-value store of a sandboxed plugin (``api.kv``, permission ``storage:kv``)."""

    __tablename__ = "plugin_kv"

    plugin_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True)
    )
    key: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    value: Any = Field(default=None, sa_column=sa.Column(JSONDocument, nullable=True))
    updated_at: datetime = _when()


class PluginViolation(SQLModel, table=True):
    """A refused action or a limit hit by a sandboxed plugin."""

    __tablename__ = "plugin_security_violations"
    __table_args__ = (sa.Index("ix_plugin_security_violations_plugin_time", "plugin_id", "occurred_at", "id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=sa.Column(sa.Uuid(), primary_key=True))
    plugin_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(sa_column=sa.Column(sa.String(50), nullable=False))
    detail: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    context: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))
    occurred_at: datetime = _when()


TABLES = (PluginRow, PluginConfiguration, PluginApiAccess, PluginViolation, PluginKV)
