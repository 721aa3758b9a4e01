"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from builtin_plugins.auth.passwords import MAX_PASSWORD_LENGTH
from kernel.pagination import PageQuery

Role = Literal["admin", "viewer"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""A string the database can store (PostgreSQL refuses NUL characters and lone surrogates)."""


class LoginIn(BaseModel):
    username: Text = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class TokenPairOut(BaseModel):
    """Credentials of a session: a short-lived access JWT and a single-use refresh token."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - a scheme name
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshIn(BaseModel):
    refresh_token: Text = Field(min_length=1, max_length=300)


class PasswordChangeIn(BaseModel):
    username: Text = Field(min_length=1, max_length=150)
    current_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class PasswordResetIn(BaseModel):
    new_password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class MeOut(BaseModel):
    """The caller."""

    id: str
    username: str
    role: Role
    kind: Literal["user", "token"]
    session_id: str | None = None
    token_id: str | None = None
    permissions: list[str]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    active: bool
    oidc_linked: bool = False
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    password_changed_at: datetime | None
    deleted_at: datetime | None


class UserCreateIn(BaseModel):
    username: Text = Field(min_length=1, max_length=150)
    password: str | None = Field(
        None, min_length=1, max_length=MAX_PASSWORD_LENGTH, description="Omit for an OIDC-only account"
    )
    role: Role
    display_name: Text = Field("", max_length=200)


class UserUpdateIn(BaseModel):
    role: Role | None = None
    active: bool | None = None
    display_name: Text | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> UserUpdateIn:
        if self.role is None and self.active is None and self.display_name is None:
            raise ValueError("give at least one of role, active, display_name")
        return self


class UserQuery(PageQuery):
    role: Role | None = None
    active: bool | None = None
    q: Text | None = Field(None, max_length=150, description="Part of the username")
    include_deleted: bool = False


class ListQuery(PageQuery):
    """``limit`` and ``cursor``."""


class SessionQuery(ListQuery):
    active: bool = Field(False, description="Only sessions that are neither revoked nor expired")


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    auth_method: str
    ip: str | None
    user_agent: str | None
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class RevokedOut(BaseModel):
    revoked: int


class TokenCreateIn(BaseModel):
    name: Text = Field(min_length=1, max_length=100)
    role: Role | None = Field(None, description="Default: the owner's role")
    expires_in_days: int | None = Field(None, ge=1, le=3650)
    user_id: uuid.UUID | None = Field(None, description="Owner (admins only); default: the caller")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    role: Role
    prefix: str
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret: shown this once, never again")


class TokenQuery(ListQuery):
    user_id: uuid.UUID | None = Field(None, description="Another user's tokens (admins only)")
    include_revoked: bool = False


class AuditQuery(ListQuery):
    actor_id: Text | None = Field(None, max_length=64)
    action: Text | None = Field(None, max_length=100)
    outcome: Literal["success", "denied", "throttled", "failure", "error"] | None = None
    target_id: Text | None = Field(None, max_length=64)
    ip: Text | None = Field(None, max_length=64)
    since: AwareDatetime | None = Field(None, description="RFC 3339 with offset, inclusive")
    until: AwareDatetime | None = Field(None, description="RFC 3339 with offset, exclusive")


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    actor_id: str | None
    actor_name: str | None
    actor_kind: str
    actor_role: str | None
    action: str
    outcome: str
    status: int | None
    method: str | None
    path: str | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    target_id: str | None
    details: dict[str, Any]
