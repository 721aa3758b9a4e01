"""One exception hierarchy for the whole product, mapped once to RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "urn:taylordash:problem:"


class TaylorDashError(Exception):
    """Root of every error the kernel and plugins raise on purpose."""


class ConfigError(TaylorDashError):
    """Settings are invalid. ``problems`` holds one human-readable line per bad value."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class StartupError(TaylorDashError):
    """The kernel cannot start (database unreachable, schema behind, undeclared route, ...)."""

    exit_code = 1


class PluginError(TaylorDashError):
    """A plugin misbehaved: raised in a hook, returned the wrong type, declared something invalid."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class ProblemError(TaylorDashError):
    """An error with an HTTP meaning. Rendered as ``application/problem+json``.

    ``slug`` makes the stable ``type`` URI (``urn:taylordash:problem:<slug>``); clients branch on it.
    """

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        if slug is not None:
            self.slug = slug
        if title is not None:
            self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra
        super().__init__(detail or self.title)

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(ProblemError):
    """The request cannot be read (malformed JSON, CSV or multipart; a cursor this API did not return)."""

    status, slug, title = 400, "bad-request", "Bad Request"


class Unauthorized(ProblemError):
    """No valid credentials; answered with ``WWW-Authenticate: Bearer``."""

    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ProblemError):
    """The caller is known but lacks the permission the route names."""

    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    """No such resource (or one the caller may not know exists)."""

    status, slug, title = 404, "not-found", "Not Found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method Not Allowed"


class Conflict(ProblemError):
    """The request contradicts the stored state (a duplicate name, a dependency cycle)."""

    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(ProblemError):
    """``If-Match`` names a version the resource is no longer at."""

    status, slug, title = 412, "precondition-failed", "Precondition Failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationFailed(ProblemError):
    """The input does not fit its schema; ``errors`` lists the fields (``loc``, ``msg``, ``type``)."""

    status, slug, title = 422, "validation-error", "Validation Failed"


class TooManyRequests(ProblemError):
    """Slow down: a rate limit was hit; ``Retry-After`` says for how long."""

    status, slug, title = 429, "too-many-requests", "Too Many Requests"


class ServiceUnavailable(ProblemError):
    """A dependency (the database, the broker, a plugin's worker) cannot serve the request now."""

    status, slug, title = 503, "service-unavailable", "Service Unavailable"
