"""Tables of the auth plugin. Same schema on SQLite and PostgreSQL (JSONB there)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
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


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _when(nullable: bool = False, index: bool = False) -> Any:
    column = sa.Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


class User(SQLModel, table=True):
    """A person or service account. Soft-deleted users keep their row (audit refers to them)."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(max_length=20)
    active: bool = True
    oidc_subject: str | None = Field(default=None, max_length=500, unique=True, index=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()
    password_changed_at: datetime | None = _when(nullable=True)
    last_login_at: datetime | None = _when(nullable=True)
    deleted_at: datetime | None = _when(nullable=True)


class UserSession(SQLModel, table=True):
    """A login: access JWTs name it (``sid``) and its rotating refresh tokens belong to it."""

    __tablename__ = "user_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    auth_method: str = Field(default="password", max_length=20)
    refresh_generation: int = 0
    refresh_salt: str = Field(max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)
    created_at: datetime = _when()
    refreshed_at: datetime = _when()
    refresh_expires_at: datetime = _when()
    expires_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)
    revoked_reason: str | None = Field(default=None, max_length=50)


class ApiToken(SQLModel, table=True):
    """An automation credential ``td_…``: only its SHA-256 is stored; its role never exceeds its owner's."""

    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_by: uuid.UUID | None = Field(default=None)
    created_at: datetime = _when()
    expires_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)
    revoked_at: datetime | None = _when(nullable=True)


class AuditEntry(SQLModel, table=True):
    """One audited action: who, what, when, from where, and the outcome."""

    __tablename__ = "auth_audit_log"

    id: uuid.UUID = Field(primary_key=True)
    occurred_at: datetime = _when(index=True)
    actor_id: str | None = Field(default=None, max_length=64, index=True)
    actor_name: str | None = Field(default=None, max_length=150)
    actor_kind: str = Field(max_length=20)
    actor_role: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=100, index=True)
    outcome: str = Field(max_length=20, index=True)
    status: int | None = None
    method: str | None = Field(default=None, max_length=10)
    path: str | None = Field(default=None, max_length=500)
    ip: str | None = Field(default=None, max_length=64, index=True)
    user_agent: str | None = Field(default=None, max_length=300)
    request_id: str | None = Field(default=None, max_length=128)
    target_id: str | None = Field(default=None, max_length=64, index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(JSONDocument, nullable=False))


class LoginThrottle(SQLModel, table=True):
    """Recent failed logins of one username or client address, and the lockout they earned."""

    __tablename__ = "auth_login_throttle"

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    last_failure_at: datetime = _when()
    locked_until: datetime | None = _when(nullable=True)


TABLES: tuple[type[SQLModel], ...] = (User, UserSession, ApiToken, AuditEntry, LoginThrottle)
