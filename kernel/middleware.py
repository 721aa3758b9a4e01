"""The kernel's own ASGI middleware (request/trace ids, access logs, error rendering) and the
rendering of problems as RFC 9457 responses."""

from __future__ import annotations

import logging
import os
import re
import sys
import time

import structlog
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel.errors import MethodNotAllowed, NotFound, ProblemError, ServiceUnavailable

PROBLEM_JSON = "application/problem+json"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
access_log = structlog.get_logger("taylordash.access")
_access_stdlib = logging.getLogger("taylordash.access")
error_log = structlog.get_logger("taylordash.errors")


def problem_response(problem: ProblemError, instance: str | None = None) -> Response:
    """Render a :class:`ProblemError` as RFC 9457 ``application/problem+json``."""
    return JSONResponse(
        problem.to_dict(instance), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


async def send_problem(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the request with the problem document of ``exc`` (see :func:`as_problem`)."""
    await problem_response(as_problem(exc), scope["path"])(scope, receive, send)


async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's answer when no route matches: a 404 problem document."""
    await send_problem(HTTPException(404), scope, receive, send)


def as_problem(exc: Exception) -> ProblemError:
    """Map any exception to the problem clients see; unknown ones become a bare 500."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return NotFound("no route matches this path")
        if exc.status_code == 405:
            return MethodNotAllowed("this path does not accept that method", headers=dict(exc.headers or {}))
        problem = ProblemError(exc.detail, headers=dict(exc.headers or {}))
        problem.status = exc.status_code
        problem.slug = "http-error"
        problem.title = str(exc.detail)
        return problem
    if database_unavailable(exc):
        return ServiceUnavailable("the database is unavailable; retry shortly", headers={"Retry-After": "1"})
    return ProblemError("an unexpected error occurred; the request id identifies it in the logs")


# SQLSTATE classes that say the server cannot serve now: connection exceptions, insufficient resources,
# operator intervention (shutting down, crashed, starting up).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached or is restarting (a 503, not a 500),
    whether it comes through SQLAlchemy or straight from the driver (lean read paths)."""
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError | ConnectionError):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    asyncpg = sys.modules.get("asyncpg")
    return asyncpg is not None and isinstance(exc, asyncpg.InterfaceError)


class RequestContextMiddleware:
    """The outermost layer of every HTTP request. Gives it an id (``X-Request-ID``, echoed) and a trace
    id (W3C ``traceparent``), binds both into every log line of the request, turns any exception that
    escapes the routes or plugin middleware into problem+json, and writes one access-log line.

    One layer with one wrapped ``send`` does all of it: every layer of middleware costs every request a
    coroutine call on the way in and a wrapped ``send`` per message on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = trace_id = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _SAFE_ID.match(candidate) else None
            elif name == b"traceparent":
                match = _TRACEPARENT.match(value.decode("latin-1"))
                trace_id = match.group(1) if match else None
        if request_id is None or trace_id is None:
            fresh = os.urandom(32).hex()  # one system call for both ids
            request_id = request_id or fresh[:32]
            trace_id = trace_id or fresh[32:]
        scope.setdefault("state", {}).update(request_id=request_id, trace_id=trace_id)
        raw_id = request_id.encode()
        status = 0  # until the response starts
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", raw_id))
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id, trace_id=trace_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            problem = as_problem(exc)
            if problem.status >= 500 and not isinstance(problem, ServiceUnavailable):
                error_log.exception("request.failed", path=scope["path"])
            else:
                error_log.warning("request.unavailable", path=scope["path"], error=repr(exc))
            if status:
                raise
            await problem_response(problem, scope["path"])(scope, receive, send_with_id)
        finally:
            if _access_stdlib.isEnabledFor(logging.INFO):  # skip building the event when it is filtered
                access_log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status or 500,
                    duration_ms=round((time.perf_counter() - start) * 1000, 2),
                )
            structlog.contextvars.reset_contextvars(**tokens)
