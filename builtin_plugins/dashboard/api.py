"""The pages read through the same JSON API the browser and every client use, in-process.

A sub-request goes straight to the app's router with the browser's own credentials, so it runs each
route's permission check, validation and serialization — a page can never show what the API would
refuse — without a socket, and without the outer middleware (access log, audit, headers) running twice.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.types import Message

from sdk import ProblemError

FORWARDED = {b"cookie", b"authorization", b"host", b"user-agent"}


class ApiError(Exception):
    """The API answered a sub-request with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        detail = body.get("detail") if isinstance(body, dict) else None
        super().__init__(detail or f"HTTP {status}")

    @property
    def detail(self) -> str:
        return str(self)


class Api:
    """GETs against the API on behalf of the request's caller."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.headers = [(k, v) for k, v in request.scope["headers"] if k in FORWARDED]

    async def get(self, path: str, **params: Any) -> Any:
        """The decoded JSON answer of ``GET path?params`` (``None`` values are left out); raises
        :class:`ApiError` for an error status."""
        query = urlencode({k: v for k, v in params.items() if v is not None and v != ""}, doseq=True)
        outer = self.request.scope
        scope = {
            "type": "http",
            "asgi": outer.get("asgi", {"version": "3.0"}),
            "http_version": outer.get("http_version", "1.1"),
            "method": "GET",
            "scheme": outer.get("scheme", "http"),
            "server": outer.get("server"),
            "client": outer.get("client"),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": self.headers,
            "app": outer.get("app"),
            "state": {},
        }
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await outer["app"].router(scope, receive, send)
        except ProblemError as problem:
            raise ApiError(problem.status, problem.to_dict()) from None
        body = b"".join(chunks)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body.decode("utf-8", "replace")
        if status >= 400:
            raise ApiError(status, data)
        return data

    async def get_or(self, default: Any, path: str, **params: Any) -> Any:
        """Like :meth:`get`, but ``default`` when the API refuses or the route is absent."""
        try:
            return await self.get(path, **params)
        except ApiError:
            return default
