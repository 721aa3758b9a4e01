"""HTTP layer of auth: sessions, the caller, API tokens. Thin: parse, call the service, shape the reply.

Login, refresh, logout and password change are public routes: the credential in the request is the
authorization, so anyone holding one (viewers included) can use it.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from builtin_plugins.auth.audit import Actor, AuditNote, Origin
from builtin_plugins.auth.schemas import (
    ListQuery,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    RefreshIn,
    SessionOut,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
    TokenPairOut,
    TokenQuery,
)
from builtin_plugins.auth.service import AuthService, TokenPair
from builtin_plugins.auth.tokens import API_TOKEN_PREFIX
from kernel.pagination import Page
from sdk import BadRequest, Forbidden, ProblemError, RequestContext, Route, Unauthorized

TAGS = ("auth",)
CREDENTIAL_PROBLEMS = {401: "Invalid credentials or token", 429: "Too many failed logins; see Retry-After"}


# -- helpers shared with the admin routes --------------------------------------------------------
def service(ctx: RequestContext) -> AuthService:
    return ctx.kernel.services["auth"]


def origin_of(request: Request) -> Origin:
    return Origin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        method=request.method,
        path=request.url.path,
        request_id=getattr(request.state, "request_id", None),
    )


def note(ctx: RequestContext, action: str, target_id: str | None = None) -> AuditNote:
    """Tell the audit middleware what this request does."""
    audit_note = AuditNote(action, target_id)
    ctx.request.state.audit = audit_note
    return audit_note


def actor_of(ctx: RequestContext) -> Actor:
    return Actor.of(ctx.principal)


def is_admin(ctx: RequestContext) -> bool:
    return ctx.principal is not None and ctx.kernel.permissions.allows(ctx.principal, "users:admin")


def caller_id(ctx: RequestContext) -> uuid.UUID:
    """The caller's user id; principals that are not users of this plugin get a 400."""
    try:
        return uuid.UUID(ctx.principal.id if ctx.principal else "")
    except ValueError:
        raise BadRequest("the caller is not a TaylorDash user", slug="not-a-user") from None


def bearer(request: Request) -> str:
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send the access token as Authorization: Bearer …", headers={"WWW-Authenticate": "Bearer"})
    return credential.strip()


def token_reply(ctx: RequestContext, pair: TokenPair) -> TokenPairOut:
    ctx.headers["cache-control"] = "no-store"
    return TokenPairOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)


def page_of(model: Any, rows: list[Any], cursor: str | None) -> Any:
    return Page[model](items=[model.model_validate(r) for r in rows], next_cursor=cursor)


# -- sessions --------------------------------------------------------------------------------------
async def login(ctx: RequestContext) -> TokenPairOut:
    audit_note = note(ctx, "auth.login")
    pair = await service(ctx).login(ctx.body.username, ctx.body.password, origin_of(ctx.request), audit_note)
    return token_reply(ctx, pair)


async def refresh(ctx: RequestContext) -> TokenPairOut:
    audit_note = note(ctx, "auth.refresh")
    return token_reply(ctx, await service(ctx).refresh(ctx.body.refresh_token, audit_note))


async def logout(ctx: RequestContext) -> None:
    audit_note = note(ctx, "auth.logout")
    credential = bearer(ctx.request)
    if credential.startswith(API_TOKEN_PREFIX):
        raise BadRequest("API tokens are revoked with DELETE /api/v1/auth/tokens/{id}", slug="not-a-session")
    ctx.request.state.principal = await service(ctx).logout(credential, audit_note)


async def change_password(ctx: RequestContext) -> None:
    audit_note = note(ctx, "auth.password_change")
    body: PasswordChangeIn = ctx.body
    await service(ctx).change_password(
        body.username, body.current_password, body.new_password, origin_of(ctx.request), audit_note
    )


async def me(ctx: RequestContext) -> MeOut:
    principal = ctx.principal
    assert principal is not None
    return MeOut(
        id=principal.id,
        username=principal.name,
        role=principal.role,  # type: ignore[arg-type]
        kind="token" if principal.kind == "token" else "user",
        session_id=principal.session_id,
        token_id=principal.extra.get("token_id"),  # type: ignore[arg-type]
        permissions=service(ctx).permissions_of(principal.role),
    )


async def my_sessions(ctx: RequestContext) -> Page[SessionOut]:
    query: ListQuery = ctx.query
    rows, cursor = await service(ctx).users.sessions(caller_id(ctx), limit=query.limit, cursor=query.cursor)
    return page_of(SessionOut, rows, cursor)


# -- API tokens ------------------------------------------------------------------------------------
async def list_tokens(ctx: RequestContext) -> Page[TokenOut]:
    query: TokenQuery = ctx.query
    user_id = query.user_id or caller_id(ctx)
    if str(user_id) != (ctx.principal.id if ctx.principal else None) and not is_admin(ctx):
        raise Forbidden("only an admin lists other users' tokens")
    rows, cursor = await service(ctx).api_tokens.search(
        limit=query.limit, cursor=query.cursor, user_id=user_id, include_revoked=query.include_revoked
    )
    return page_of(TokenOut, rows, cursor)


async def create_token(ctx: RequestContext) -> TokenCreatedOut:
    body: TokenCreateIn = ctx.body
    owner = body.user_id or caller_id(ctx)
    audit_note = note(ctx, "auth.token_create", str(owner))
    row, secret = await service(ctx).api_tokens.create(
        owner, body.name, actor_of(ctx), role=body.role, days=body.expires_in_days, actor_is_admin=is_admin(ctx)
    )
    audit_note.details.update(token_id=str(row.id), role=row.role, name=row.name)
    ctx.headers["cache-control"] = "no-store"
    return TokenCreatedOut(**TokenOut.model_validate(row).model_dump(), token=secret)


async def revoke_token(ctx: RequestContext) -> None:
    token_id: uuid.UUID = ctx.path_params["token_id"]
    audit_note = note(ctx, "auth.token_revoke")
    audit_note.details["token_id"] = str(token_id)
    row = await service(ctx).api_tokens.revoke(token_id, actor_of(ctx), actor_is_admin=is_admin(ctx))
    audit_note.target_id = str(row.user_id)


# -- OpenID Connect --------------------------------------------------------------------------------
async def oidc_start(ctx: RequestContext) -> Response:
    oidc = service(ctx).oidc
    assert oidc is not None
    return await oidc.start(ctx.request)


async def oidc_callback(ctx: RequestContext) -> Response:
    """Finish an OIDC login. A GET, so it writes its own audit entry (the middleware audits writes)."""
    auth = service(ctx)
    assert auth.oidc is not None
    audit_note = note(ctx, "auth.login")
    audit_note.details["method"] = "oidc"
    try:
        claims = await auth.oidc.finish(ctx.request)
        audit_note.details["subject"] = str(claims["sub"])[:200]
        user = await auth.oidc.local_user(claims)
        pair = await auth.start_session(user, "oidc", origin_of(ctx.request), audit_note)
    except ProblemError as problem:
        await auth.audit.record(auth.audit.for_request(ctx.request.scope, problem.status))
        raise
    await auth.audit.record(auth.audit.for_request(ctx.request.scope, 200))
    reply = TokenPairOut(access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in)
    response = Response(reply.model_dump_json(), media_type="application/json", headers={"cache-control": "no-store"})
    auth.oidc.clear_cookie(ctx.request, response)
    return response


OIDC_ROUTES = [
    Route(
        "/api/v1/auth/oidc/login",
        oidc_start,
        public=True,
        media_type="text/html",
        status_code=302,
        summary="Start an OpenID Connect login (redirects to the provider)",
        tags=TAGS,
        name="auth_oidc_login",
    ),
    Route(
        "/api/v1/auth/oidc/callback",
        oidc_callback,
        public=True,
        response=TokenPairOut,
        summary="Finish an OpenID Connect login: tokens for the mapped local user",
        tags=TAGS,
        problems={401: "The provider's answer is invalid", 403: "No local user is mapped to the account"},
        name="auth_oidc_callback",
    ),
]

ROUTES = [
    Route(
        "/api/v1/auth/login",
        login,
        methods=("POST",),
        public=True,
        body=LoginIn,
        response=TokenPairOut,
        summary="Log in with a username and password",
        tags=TAGS,
        problems=CREDENTIAL_PROBLEMS,
        name="auth_login",
    ),
    Route(
        "/api/v1/auth/refresh",
        refresh,
        methods=("POST",),
        public=True,
        body=RefreshIn,
        response=TokenPairOut,
        summary="Exchange a refresh token for new tokens (the old one stops working)",
        tags=TAGS,
        problems={401: "Invalid, expired or reused refresh token"},
        name="auth_refresh",
    ),
    Route(
        "/api/v1/auth/logout",
        logout,
        methods=("POST",),
        public=True,
        status_code=204,
        summary="End the session of the bearer access token, on every instance",
        tags=TAGS,
        problems={400: "The bearer is an API token", 401: "No valid access token"},
        name="auth_logout",
    ),
    Route(
        "/api/v1/auth/password",
        change_password,
        methods=("POST",),
        public=True,
        body=PasswordChangeIn,
        status_code=204,
        summary="Change your password (ends all your sessions)",
        tags=TAGS,
        problems={**CREDENTIAL_PROBLEMS, 400: "The new password equals the current one"},
        name="auth_password_change",
    ),
    Route(
        "/api/v1/auth/me",
        me,
        permission="auth:self",
        response=MeOut,
        summary="The caller, its role and permissions",
        tags=TAGS,
        name="auth_me",
    ),
    Route(
        "/api/v1/auth/sessions",
        my_sessions,
        permission="auth:self",
        query=ListQuery,
        response=Page[SessionOut],
        summary="Your sessions, newest first",
        tags=TAGS,
        problems={400: "Invalid cursor, or the caller is not a user"},
        name="auth_sessions",
    ),
    Route(
        "/api/v1/auth/tokens",
        list_tokens,
        permission="auth:self",
        query=TokenQuery,
        response=Page[TokenOut],
        summary="API tokens: yours, or a user's (admins)",
        tags=TAGS,
        problems={400: "Invalid cursor, or the caller is not a user"},
        name="auth_tokens_list",
    ),
    Route(
        "/api/v1/auth/tokens",
        create_token,
        methods=("POST",),
        permission="tokens:write",
        body=TokenCreateIn,
        response=TokenCreatedOut,
        status_code=201,
        summary="Create an API token (the secret is shown once)",
        tags=TAGS,
        problems={404: "No such user"},
        name="auth_tokens_create",
    ),
    Route(
        "/api/v1/auth/tokens/{token_id:uuid}",
        revoke_token,
        methods=("DELETE",),
        permission="tokens:write",
        status_code=204,
        summary="Revoke an API token, on every instance",
        tags=TAGS,
        problems={404: "No such token"},
        name="auth_tokens_revoke",
    ),
]
