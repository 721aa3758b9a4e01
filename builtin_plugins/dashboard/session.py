"""Browser sessions: the auth plugin's tokens kept in HttpOnly cookies, with CSRF protection.

A browser logs in through the dashboard's form. The access JWT and the refresh token the auth plugin
issues go into two ``HttpOnly; SameSite=Strict`` cookies (``Secure`` on HTTPS); the access cookie
expires a little before the token does, and :class:`RefreshMiddleware` rotates the pair the next time
a request carries only the refresh cookie. :func:`authenticate` turns the access cookie into the
same principal a bearer header would give, so every API route accepts a browser session — and a
mutating request made with the cookie must carry the session's CSRF token in ``X-CSRF-Token``
(pages put it in ``<meta name="csrf-token">``). Form posts (login, logout) carry it as a field.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import structlog
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.routing import MUTATING
from sdk import Forbidden, Principal, ProblemError

log = structlog.get_logger("taylordash.dashboard")

ACCESS_COOKIE = "td_access"
REFRESH_COOKIE = "td_refresh"
LOGIN_CSRF_COOKIE = "td_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
EARLY_EXPIRY = 30  # seconds: the access cookie goes before the token does, so it is never sent stale
REFRESH_GRACE = 30.0  # seconds a rotated refresh token still maps to its successor (parallel requests)


class CsrfFailed(Forbidden):
    slug = "csrf-failed"


class Csrf:
    """Per-session CSRF tokens: an HMAC of the session id under a key derived from the deployment
    secret, so every instance computes the same token and nothing is stored."""

    def __init__(self, secret: bytes) -> None:
        self.key = hmac.new(secret, b"taylordash/dashboard/csrf", hashlib.sha256).digest()

    def token(self, session_id: str) -> str:
        return hmac.new(self.key, session_id.encode(), hashlib.sha256).hexdigest()

    def valid(self, session_id: str | None, presented: str | None) -> bool:
        if not session_id or not presented:
            return False
        return hmac.compare_digest(self.token(session_id), presented)


def is_https(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


def set_cookie(response: Response, name: str, value: str, max_age: int, https: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=https)


def clear_cookie(response: Response, name: str, https: bool) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=https)


def set_session_cookies(response: Response, pair: Any, refresh_seconds: int, https: bool) -> None:
    set_cookie(response, ACCESS_COOKIE, pair.access_token, max(pair.expires_in - EARLY_EXPIRY, 10), https)
    set_cookie(response, REFRESH_COOKIE, pair.refresh_token, refresh_seconds, https)


def clear_session_cookies(response: Response, https: bool) -> None:
    clear_cookie(response, ACCESS_COOKIE, https)
    clear_cookie(response, REFRESH_COOKIE, https)


def _cookie_header(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            return value
    return None


def read_cookies(scope: Scope) -> dict[str, str]:
    raw = _cookie_header(scope)
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except Exception:  # a malformed cookie header is no credential
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _has_bearer(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])


class CookieAuth:
    """The ``authenticate`` hook's work for requests carrying the dashboard's access cookie."""

    def __init__(self, kernel: Any, csrf: Csrf) -> None:
        self.kernel = kernel
        self.csrf = csrf

    def authenticate(self, request: Request) -> Principal | Awaitable[Principal] | None:
        scope = request.scope
        raw = _cookie_header(scope)
        if raw is None or ACCESS_COOKIE.encode() not in raw or _has_bearer(scope):
            return None
        auth = self.kernel.services.get("auth")
        token = read_cookies(scope).get(ACCESS_COOKIE)
        if auth is None or not token:
            return None
        result = auth.authenticator.authenticate(token)
        if result is None:
            return None
        presented = request.headers.get(CSRF_HEADER) if scope["method"] in MUTATING else None
        if isinstance(result, Principal):
            return self._accept(scope, result, presented)
        return self._later(scope, result, presented)

    async def principal(self, request: Request) -> Principal | None:
        """The session's principal without the CSRF check: for form posts, which carry the token in a
        field that the handler checks itself."""
        token = read_cookies(request.scope).get(ACCESS_COOKIE)
        auth = self.kernel.services.get("auth")
        if not token or auth is None:
            return None
        try:
            result = auth.authenticator.authenticate(token)
            return result if result is None or isinstance(result, Principal) else await result
        except ProblemError:
            return None

    async def _later(self, scope: Scope, pending: Awaitable[Principal], presented: str | None) -> Principal:
        return self._accept(scope, await pending, presented)

    def _accept(self, scope: Scope, principal: Principal, presented: str | None) -> Principal:
        scope.setdefault("state", {})["authenticated"] = principal
        if scope["method"] in MUTATING and not self.csrf.valid(principal.session_id, presented):
            raise CsrfFailed("a request made with the session cookie must carry its CSRF token (X-CSRF-Token)")
        return principal


class RefreshMiddleware:
    """Rotates the cookie session when a request carries the refresh cookie but no access cookie.

    The new access token is put into the request's cookie header, so the request itself is served
    with it, and both cookies are renewed on the response. Parallel requests of one page present the
    same refresh token: the first rotates it, the others reuse its successor for ``REFRESH_GRACE``
    seconds instead of presenting a superseded token (which would end the session)."""

    def __init__(self, app: ASGIApp, kernel: Any) -> None:
        self.app = app
        self.kernel = kernel
        self._rotated: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        raw = _cookie_header(scope)
        if raw is None or REFRESH_COOKIE.encode() not in raw or _has_bearer(scope):
            await self.app(scope, receive, send)
            return
        cookies = read_cookies(scope)
        refresh_token = cookies.get(REFRESH_COOKIE)
        if not refresh_token or cookies.get(ACCESS_COOKIE):
            await self.app(scope, receive, send)
            return
        pair = await self._rotate(refresh_token)
        https = is_https(scope)
        extra = Response()
        if pair is None:
            clear_session_cookies(extra, https)
        else:
            auth = self.kernel.services["auth"]
            set_session_cookies(extra, pair, auth.settings.refresh_token_seconds, https)
            cookies[ACCESS_COOKIE] = pair.access_token
            cookies[REFRESH_COOKIE] = pair.refresh_token
        header = "; ".join(f"{k}={v}" for k, v in cookies.items() if not (pair is None and k == REFRESH_COOKIE))
        scope = dict(scope)
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"cookie"] + [
            (b"cookie", header.encode("latin-1"))
        ]
        set_cookies = [(k, v) for k, v in extra.raw_headers if k == b"set-cookie"]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ())) + set_cookies
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _rotate(self, refresh_token: str) -> Any:
        auth = self.kernel.services.get("auth")
        if auth is None:
            return None
        now = time.monotonic()
        for key, (until, _) in list(self._rotated.items()):
            if until < now:
                self._rotated.pop(key, None)
        lock = self._locks.setdefault(refresh_token, asyncio.Lock())
        try:
            async with lock:
                known = self._rotated.get(refresh_token)
                if known is not None:
                    return known[1]
                try:
                    pair = await auth.refresh(refresh_token)
                except ProblemError as exc:
                    log.info("dashboard.refresh_refused", reason=exc.detail)
                    return None
                self._rotated[refresh_token] = (now + REFRESH_GRACE, pair)
                return pair
        finally:
            if not lock.locked():
                self._locks.pop(refresh_token, None)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a sign-in comes from, as the auth service's throttling and audit read it."""

    ip: str | None
    user_agent: str | None
    method: str | None
    path: str | None
    request_id: str | None

    @classmethod
    def of(cls, request: Request) -> Origin:
        return cls(
            request.client.host if request.client else None,
            request.headers.get("user-agent"),
            request.method,
            request.url.path,
            getattr(request.state, "request_id", None),
        )


OIDC_CALLBACK = "/api/v1/auth/oidc/callback"


class OidcBrowserMiddleware:
    """Finishes an OIDC sign-in started from the login page as a browser session.

    The auth plugin's callback answers with a JSON token pair, which suits API clients. When a browser
    arrives there by navigation (``Sec-Fetch-Mode: navigate``, or ``Accept: text/html``), a successful
    answer is turned into the session cookies and a redirect to the overview; a failure is left as
    the auth plugin's problem document."""

    def __init__(self, app: ASGIApp, kernel: Any) -> None:
        self.app = app
        self.kernel = kernel

    @staticmethod
    def _navigation(scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"sec-fetch-mode" and value == b"navigate":
                return True
            if name == b"accept" and b"text/html" in value:
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != OIDC_CALLBACK or not self._navigation(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        assert start is not None
        auth = self.kernel.services.get("auth")
        if start["status"] != 200 or auth is None:
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(body)})
            return
        pair = TokenReply.model_validate_json(b"".join(body))
        response = Response(status_code=303, headers={"location": "/", "cache-control": "no-store"})
        set_session_cookies(response, pair, auth.settings.refresh_token_seconds, is_https(scope))
        # keep the auth plugin's own cookie changes (it clears its OIDC state cookie)
        kept = [(k, v) for k, v in start.get("headers", ()) if k == b"set-cookie"]
        response.raw_headers.extend(kept)
        await response(scope, receive, send)


class TokenReply(BaseModel):
    access_token: str
    refresh_token: str
    expires_in: int


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
