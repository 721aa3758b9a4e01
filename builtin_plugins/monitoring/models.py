"""Tables of the monitoring plugin: logs, the live log feed, system samples, retention policies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


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


class ApplicationLog(SQLModel, table=True):
    """One structured log line. ``service`` is the component that logged it (``access``, ``auth``,
    ``uvicorn``…), ``instance`` the process; ``context`` holds the line's other fields."""

    __tablename__ = "application_logs"
    __table_args__ = (
        sa.Index("ix_application_logs_ts_id", "ts", "id"),
        sa.Index("ix_application_logs_level_ts", "level", "ts"),
        sa.Index("ix_application_logs_service_ts", "service", "ts"),
        sa.Index("ix_application_logs_trace_id", "trace_id"),
    )

    id: uuid.UUID = Field(primary_key=True)
    ts: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    level: str = Field(max_length=10)
    service: str = Field(max_length=100)
    logger: str = Field(max_length=200)
    message: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    trace_id: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    instance: str = Field(max_length=100)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))


class LogStreamEntry(SQLModel, table=True):
    """The live log feed: one row per written log line, numbered in commit-ish order by the database,
    so every instance's ``/api/v1/logs/stream`` sees every instance's lines and clients resume with
    ``Last-Event-ID``. Kept briefly (see its retention policy)."""

    __tablename__ = "log_stream"

    seq: int | None = Field(default=None, sa_column=sa.Column(SEQUENCE, primary_key=True, autoincrement=True))
    log_id: uuid.UUID = Field(nullable=False)
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))


class SystemMetric(SQLModel, table=True):
    """One sampled value (``name``) of one instance at one time."""

    __tablename__ = "system_metrics"
    __table_args__ = (
        sa.Index("ix_system_metrics_name_recorded", "name", "recorded_at"),
        sa.Index("ix_system_metrics_recorded_at", "recorded_at"),
    )

    id: uuid.UUID = Field(primary_key=True)
    recorded_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    instance: str = Field(max_length=100)
    name: str = Field(max_length=100)
    value: float = Field(sa_column=sa.Column(sa.Float(), nullable=False))


class RetentionPolicy(SQLModel, table=True):
    """How long rows of one table are kept, and what the last cleanup did."""

    __tablename__ = "retention_policies"

    table_name: str = Field(primary_key=True, max_length=100)
    max_age_days: int = Field(ge=1)
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False))
    last_run_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=True))
    last_deleted: int = Field(default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False))


TABLES = (ApplicationLog, LogStreamEntry, SystemMetric, RetentionPolicy)
DEFAULT_POLICIES = {"application_logs": 30, "system_metrics": 30, "log_stream": 1}
