"""OpenID Connect login through authlib's Starlette client, mapped to local users.

The authorization state (state, nonce, PKCE verifier) travels in a short-lived signed cookie, so any
instance can finish a login another one started.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.models import User, utcnow
from builtin_plugins.auth.tokens import derive
from builtin_plugins.auth.users import USERNAME
from sdk import Conflict, Forbidden, ServiceUnavailable, Unauthorized

if TYPE_CHECKING:
    from builtin_plugins.auth.service import AuthService

COOKIE = "td_oidc"
COOKIE_PATH = "/api/v1/auth/oidc"
COOKIE_SECONDS = 600
CALLBACK_PATH = "/api/v1/auth/oidc/callback"


class StateCookie:
    """A signed, expiring cookie holding authlib's per-login state."""

    def __init__(self, secret: bytes) -> None:
        self._key = derive(secret, "oidc-state")

    def dump(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps({"exp": time.time() + COOKIE_SECONDS, "data": data}).encode())
        mac = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        return f"{body.decode()}.{mac}"

    def load(self, raw: str | None) -> dict[str, Any]:
        if not raw or "." not in raw or len(raw) > 8192:
            return {}
        body, mac = raw.rsplit(".", 1)
        if not hmac.compare_digest(hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest(), mac):
            return {}
        try:
            content = json.loads(base64.urlsafe_b64decode(body))
        except (ValueError, binascii.Error):
            return {}
        if not isinstance(content, dict) or content.get("exp", 0) < time.time():
            return {}
        data = content.get("data")
        return data if isinstance(data, dict) else {}


class OidcLogin:
    """Starts the authorization-code flow and turns its result into a local session."""

    def __init__(self, auth: AuthService) -> None:
        settings = auth.settings
        self.auth = auth
        self.settings = settings
        self.cookie = StateCookie(auth.kernel.settings.signing_key())
        self.oauth = OAuth()
        issuer = (settings.oidc_issuer or "").rstrip("/")
        self.client = self.oauth.register(
            "taylordash",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )

    def _redirect_uri(self, request: Request) -> str:
        return self.settings.oidc_redirect_url or str(request.base_url).rstrip("/") + CALLBACK_PATH

    def _set_cookie(self, request: Request, response: Response, value: str, max_age: int) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=max_age,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    async def start(self, request: Request) -> Response:
        """Redirect the browser to the provider's authorization endpoint."""
        request.scope["session"] = {}
        try:
            response = await self.client.authorize_redirect(request, self._redirect_uri(request))
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the OpenID provider cannot be reached: {type(exc).__name__}") from None
        self._set_cookie(request, response, self.cookie.dump(request.scope["session"]), COOKIE_SECONDS)
        return response

    async def finish(self, request: Request) -> dict[str, Any]:
        """Exchange the code, validate the ID token and return its claims."""
        request.scope["session"] = self.cookie.load(request.cookies.get(COOKIE))
        if not request.scope["session"]:
            raise Unauthorized("no OpenID login is in progress in this browser", slug="oidc-failed")
        try:
            token = await self.client.authorize_access_token(request)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the OpenID provider cannot be reached: {type(exc).__name__}") from None
        except (AuthlibBaseError, JoseError, KeyError, TypeError, ValueError) as exc:
            raise Unauthorized(f"the OpenID login failed: {exc}", slug="oidc-failed") from None
        claims = token.get("userinfo")
        if not isinstance(claims, dict) or not claims.get("sub") or not claims.get("iss"):
            raise Unauthorized("the OpenID provider returned no usable ID token", slug="oidc-failed")
        return dict(claims)

    def clear_cookie(self, request: Request, response: Response) -> None:
        self._set_cookie(request, response, "", 0)

    async def local_user(self, claims: dict[str, Any]) -> User:
        """The local user for verified ID-token ``claims``: the one bound to the subject; else the user
        of the same name (bound now, when allowed); else a new one (when allowed)."""
        subject = f"{claims['iss']}|{claims['sub']}"[:500]
        raw_name = claims.get(self.settings.oidc_username_claim)
        name = raw_name.strip().casefold() if isinstance(raw_name, str) else ""
        async with self.auth.db.session() as session:
            user = (await session.exec(select(User).where(User.oidc_subject == subject))).first()
            if user is None and name and self.settings.oidc_link_by_username:
                candidate = (await session.exec(select(User).where(User.username == name))).first()
                if candidate is not None and candidate.oidc_subject is None and candidate.deleted_at is None:
                    candidate.oidc_subject = subject
                    candidate.updated_at = utcnow()
                    session.add(candidate)
                    await session.commit()
                    await session.refresh(candidate)
                    user = candidate
        if user is None and self.settings.oidc_auto_create and USERNAME.match(name):
            display = claims.get("name") if isinstance(claims.get("name"), str) else ""
            try:
                user = await self.auth.users.create(
                    name,
                    None,
                    self.settings.oidc_default_role,
                    Actor("system", name="oidc"),
                    display_name=display or "",
                    oidc_subject=subject,
                )
            except Conflict:
                user = None
        if user is None:
            raise Forbidden("no TaylorDash user is mapped to this OpenID account", slug="oidc-unmapped")
        if not user.active or user.deleted_at is not None:
            raise Forbidden("this account is disabled", slug="account-disabled")
        return user
