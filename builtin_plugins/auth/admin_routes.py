"""HTTP layer of user administration and the audit log (admins)."""

from __future__ import annotations

import uuid

from builtin_plugins.auth.models import User
from builtin_plugins.auth.routes import actor_of, note, page_of, service
from builtin_plugins.auth.schemas import (
    AuditOut,
    AuditQuery,
    PasswordResetIn,
    RevokedOut,
    SessionOut,
    SessionQuery,
    UserCreateIn,
    UserOut,
    UserQuery,
    UserUpdateIn,
)
from kernel.pagination import Page
from sdk import RequestContext, Route

TAGS = ("users",)
USER = "/api/v1/users/{user_id:uuid}"


def user_out(user: User) -> UserOut:
    return UserOut(**user.model_dump(), oidc_linked=bool(user.oidc_subject))


async def list_users(ctx: RequestContext) -> Page[UserOut]:
    query: UserQuery = ctx.query
    rows, cursor = await service(ctx).users.search(
        limit=query.limit,
        cursor=query.cursor,
        role=query.role,
        active=query.active,
        q=query.q,
        include_deleted=query.include_deleted,
    )
    return Page[UserOut](items=[user_out(u) for u in rows], next_cursor=cursor)


async def create_user(ctx: RequestContext) -> UserOut:
    body: UserCreateIn = ctx.body
    audit_note = note(ctx, "users.create")
    audit_note.details.update(username=body.username[:150], role=body.role)
    user = await service(ctx).users.create(
        body.username, body.password, body.role, actor_of(ctx), display_name=body.display_name
    )
    audit_note.target_id = str(user.id)
    return user_out(user)


async def get_user(ctx: RequestContext) -> UserOut:
    return user_out(await service(ctx).users.get(ctx.path_params["user_id"]))


async def update_user(ctx: RequestContext) -> UserOut:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    body: UserUpdateIn = ctx.body
    audit_note = note(ctx, "users.update", str(user_id))
    user, changed = await service(ctx).users.update(
        user_id, actor_of(ctx), role=body.role, active=body.active, display_name=body.display_name
    )
    if "role" in changed:
        audit_note.action = "users.role_change"
    audit_note.details["changes"] = {k: [str(v[0]), str(v[1])] for k, v in changed.items()}
    return user_out(user)


async def delete_user(ctx: RequestContext) -> None:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    note(ctx, "users.delete", str(user_id))
    await service(ctx).users.delete(user_id, actor_of(ctx))


async def reset_password(ctx: RequestContext) -> None:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    note(ctx, "users.password_reset", str(user_id))
    await service(ctx).users.reset_password(user_id, ctx.body.new_password, actor_of(ctx))


async def user_sessions(ctx: RequestContext) -> Page[SessionOut]:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    query: SessionQuery = ctx.query
    await service(ctx).users.get(user_id)
    rows, cursor = await service(ctx).users.sessions(
        user_id, limit=query.limit, cursor=query.cursor, active_only=query.active
    )
    return page_of(SessionOut, rows, cursor)


async def revoke_user_sessions(ctx: RequestContext) -> RevokedOut:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    audit_note = note(ctx, "users.sessions_revoke", str(user_id))
    await service(ctx).users.get(user_id)
    count = await service(ctx).revoke_user_sessions(user_id, "revoked-by-admin", actor_of(ctx))
    audit_note.details["revoked"] = count
    return RevokedOut(revoked=count)


async def revoke_user_session(ctx: RequestContext) -> None:
    user_id: uuid.UUID = ctx.path_params["user_id"]
    session_id: uuid.UUID = ctx.path_params["session_id"]
    audit_note = note(ctx, "users.session_revoke", str(user_id))
    audit_note.details["session_id"] = str(session_id)
    await service(ctx).users.revoke_session(user_id, session_id, actor_of(ctx))


async def list_audit(ctx: RequestContext) -> Page[AuditOut]:
    query: AuditQuery = ctx.query
    rows, cursor = await service(ctx).audit.search(**query.model_dump())
    return page_of(AuditOut, rows, cursor)


ROUTES = [
    Route(
        "/api/v1/users",
        list_users,
        permission="users:read",
        query=UserQuery,
        response=Page[UserOut],
        summary="List users by username",
        tags=TAGS,
        problems={400: "Invalid cursor"},
        name="users_list",
    ),
    Route(
        "/api/v1/users",
        create_user,
        methods=("POST",),
        permission="users:admin",
        body=UserCreateIn,
        response=UserOut,
        status_code=201,
        summary="Create a user",
        tags=TAGS,
        problems={409: "The username is taken"},
        name="users_create",
    ),
    Route(
        USER, get_user, permission="users:read", response=UserOut, summary="Show a user", tags=TAGS, name="users_get"
    ),
    Route(
        USER,
        update_user,
        methods=("PATCH",),
        permission="users:admin",
        body=UserUpdateIn,
        response=UserOut,
        summary="Change a user's role, active state or display name",
        tags=TAGS,
        problems={409: "The change would leave no active admin"},
        name="users_update",
    ),
    Route(
        USER,
        delete_user,
        methods=("DELETE",),
        permission="users:admin",
        status_code=204,
        summary="Delete a user (soft): sessions and tokens end at once",
        tags=TAGS,
        problems={409: "The last active admin cannot be deleted"},
        name="users_delete",
    ),
    Route(
        USER + "/password",
        reset_password,
        methods=("POST",),
        permission="users:admin",
        body=PasswordResetIn,
        status_code=204,
        summary="Set a user's password (ends the user's sessions)",
        tags=TAGS,
        name="users_password_reset",
    ),
    Route(
        USER + "/sessions",
        user_sessions,
        permission="users:read",
        query=SessionQuery,
        response=Page[SessionOut],
        summary="A user's sessions, newest first",
        tags=TAGS,
        problems={400: "Invalid cursor"},
        name="users_sessions",
    ),
    Route(
        USER + "/sessions",
        revoke_user_sessions,
        methods=("DELETE",),
        permission="users:admin",
        response=RevokedOut,
        summary="Revoke every session of a user, on every instance",
        tags=TAGS,
        name="users_sessions_revoke",
    ),
    Route(
        USER + "/sessions/{session_id:uuid}",
        revoke_user_session,
        methods=("DELETE",),
        permission="users:admin",
        status_code=204,
        summary="Revoke one session, on every instance",
        tags=TAGS,
        name="users_session_revoke",
    ),
    Route(
        "/api/v1/audit",
        list_audit,
        permission="audit:read",
        query=AuditQuery,
        response=Page[AuditOut],
        summary="The audit log, newest first",
        tags=("audit",),
        problems={400: "Invalid cursor"},
        name="audit_list",
    ),
]
