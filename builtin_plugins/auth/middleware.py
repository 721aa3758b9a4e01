"""Pure ASGI middleware: the audit trail of every mutating request, and security response headers."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from builtin_plugins.auth.audit import AuditLog
from builtin_plugins.auth.config import AuthSettings
from kernel.routing import MUTATING

log = structlog.get_logger("taylordash.auth")
API_CSP = b"default-src 'none'; frame-ancestors 'none'"


class AuditMiddleware:
    """Writes one ``auth_audit_log`` row per mutating request (POST, PUT, PATCH, DELETE) of any plugin:
    who (the authenticated principal), what (method, path, and the action an endpoint noted), when,
    from where (client address, user agent, request id) and the outcome (status). The row is written
    after the response has been sent, by the audit log's background writer (batched with other
    requests' rows); other methods pass straight through."""

    def __init__(self, app: ASGIApp, audit: AuditLog) -> None:
        self.app = app
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        except Exception:
            await self._record(scope, 500)
            raise
        await self._record(scope, status)

    async def _record(self, scope: Scope, status: int) -> None:
        try:
            await self.audit.defer(self.audit.request_values(scope, status))
        except Exception as exc:  # the response is out; losing the row must not turn it into an error
            log.error("auth.audit_write_failed", error=repr(exc), path=scope["path"], method=scope["method"])


class SecurityHeadersMiddleware:
    """Adds ``Content-Security-Policy``, ``X-Content-Type-Options``, ``Referrer-Policy``,
    ``X-Frame-Options`` and, on HTTPS, HSTS to every response that does not set them itself.

    HTML documents get the configured policy (and ``Cross-Origin-Opener-Policy``); every other
    response (JSON, files) gets ``default-src 'none'; frame-ancestors 'none'``: an API answer never
    needs to load anything, and the short header keeps the hot path cheap."""

    def __init__(self, app: ASGIApp, settings: AuthSettings) -> None:
        self.app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", settings.referrer_policy.encode()),
            (b"x-frame-options", b"DENY"),
        ]
        hsts = [(b"strict-transport-security", f"max-age={settings.hsts_seconds}; includeSubDomains".encode())]
        html = [
            (b"content-security-policy", settings.content_security_policy.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
            *common,
        ]
        other = [(b"content-security-policy", API_CSP), *common]
        # (html?, https?) → headers to add
        self.variants = {
            (True, False): html,
            (True, True): html + hsts if settings.hsts_seconds else html,
            (False, False): other,
            (False, True): other + hsts if settings.hsts_seconds else other,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = set()
                html = False
                for name, value in headers:  # ASGI header names are lower-case
                    present.add(name)
                    if name == b"content-type":
                        html = value.startswith(b"text/html")
                headers += [header for header in self.variants[html, https] if header[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
