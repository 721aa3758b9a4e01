"""Route declarations of the dashboard, and the handlers that are not pages: login, logout, panel files.

Pages are declared public because they answer an anonymous browser with a redirect to the login page
instead of a 401; each page authenticates its caller itself (``views.open_view``) and reads only
through the API, whose routes check their own permissions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import RedirectResponse, Response

from builtin_plugins.dashboard import pages
from builtin_plugins.dashboard.panels import panel_file, panel_policy
from builtin_plugins.dashboard.session import (
    ACCESS_COOKIE,
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    Origin,
    clear_cookie,
    clear_session_cookies,
    is_https,
    new_login_csrf,
    read_cookies,
    set_cookie,
    set_session_cookies,
)
from builtin_plugins.dashboard.views import service, who
from sdk import ProblemError, RequestContext, Route, StaticFilesRoute

STATIC = Path(__file__).resolve().parent / "static"
TAGS = ("dashboard",)
FORM_LIMIT = 16 * 1024


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme): no open redirect after login."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _oidc_enabled(ctx: RequestContext) -> bool:
    auth = ctx.kernel.services.get("auth")
    return auth is not None and auth.oidc is not None


def _login_page(ctx: RequestContext, error: str | None = None, status: int = 200, username: str = "") -> Response:
    token = new_login_csrf()
    html = (
        service(ctx)
        .env.get_template("login.html")
        .render(
            csrf_token=token,
            next=safe_next(ctx.request.query_params.get("next")),
            error=error,
            username=username,
            oidc=_oidc_enabled(ctx),
            kiosk=False,
        )
    )
    response = Response(html, status_code=status, media_type="text/html", headers={"cache-control": "no-store"})
    set_cookie(response, LOGIN_CSRF_COOKIE, token, 3600, is_https(ctx.request.scope))
    return response


async def login_form(ctx: RequestContext) -> Response:
    if await who(ctx) is not None:
        return RedirectResponse(safe_next(ctx.request.query_params.get("next")), status_code=303)
    return _login_page(ctx)


async def login(ctx: RequestContext) -> Response:
    request = ctx.request
    async with request.form(max_files=0, max_fields=10, max_part_size=FORM_LIMIT) as form:
        username = str(form.get("username", ""))[:150]
        password = str(form.get("password", ""))[:1024]
        presented = str(form.get(CSRF_FIELD, ""))
        target = safe_next(str(form.get("next", "")) or None)
    expected = read_cookies(request.scope).get(LOGIN_CSRF_COOKIE)
    if not expected or presented != expected:
        return _login_page(ctx, "The form expired; please try again.", 403, username)
    auth = ctx.kernel.services.get("auth")
    if auth is None:
        return _login_page(ctx, "Sign-in is not available: the auth plugin is disabled.", 503, username)
    try:
        pair = await auth.login(username, password, Origin.of(request))
    except ProblemError as exc:
        return _login_page(ctx, exc.detail or exc.title, exc.status, username)
    https = is_https(request.scope)
    response = RedirectResponse(target, status_code=303)
    set_session_cookies(response, pair, auth.settings.refresh_token_seconds, https)
    clear_cookie(response, LOGIN_CSRF_COOKIE, https)
    return response


async def logout(ctx: RequestContext) -> Response:
    request = ctx.request
    async with request.form(max_files=0, max_fields=5, max_part_size=FORM_LIMIT) as form:
        presented = str(form.get(CSRF_FIELD, ""))
    principal = await ctx.kernel.services["dashboard.cookies"].principal(request)
    https = is_https(request.scope)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookies(response, https)
    if principal is None:
        return response
    if not service(ctx).csrf.valid(principal.session_id, presented):
        return Response("CSRF token missing or wrong", status_code=403, media_type="text/plain")
    auth = ctx.kernel.services.get("auth")
    token = read_cookies(request.scope).get(ACCESS_COOKIE)
    if auth is not None and token:
        try:
            await auth.logout(token)
        except ProblemError:
            pass  # already ended: the cookies go anyway
    return response


async def serve_panel_file(ctx: RequestContext) -> Response:
    params = ctx.path_params
    content, media_type = await panel_file(ctx.kernel, params["plugin"], params["panel"], params["path"])
    url = ctx.request.url
    origin = f"{url.scheme}://{url.netloc}"
    return Response(
        content,
        media_type=media_type,
        headers={
            "content-security-policy": panel_policy(origin, params["plugin"], params["panel"]),
            "x-frame-options": "SAMEORIGIN",
            "cache-control": "no-cache",
        },
    )


def page(path: str, endpoint: Any, name: str, summary: str) -> Route:
    return Route(
        path, endpoint, public=True, media_type="text/html", summary=summary, tags=TAGS, name=name, in_openapi=False
    )


ROUTES: list[Route | StaticFilesRoute] = [
    page("/", pages.overview, "dashboard_overview", "Overview: projects, task counts, health, live events, panels"),
    page("/login", login_form, "dashboard_login_form", "Sign-in form"),
    Route(
        "/login",
        login,
        methods=("POST",),
        public=True,
        summary="Sign in (form post)",
        tags=TAGS,
        name="dashboard_login",
        in_openapi=False,
    ),
    Route(
        "/logout",
        logout,
        methods=("POST",),
        public=True,
        summary="Sign out (form post)",
        tags=TAGS,
        name="dashboard_logout",
        in_openapi=False,
    ),
    page("/projects", pages.projects, "dashboard_projects", "Projects: list, search, create"),
    page("/projects/{project_id:uuid}", pages.project, "dashboard_project", "A project: board, graph, history"),
    page("/tasks/{task_id:uuid}", pages.task_detail, "dashboard_task", "A task with its attachments"),
    page("/events", pages.events, "dashboard_events", "Events explorer with live tail"),
    page("/dlq", pages.dlq, "dashboard_dlq", "Dead-letter queue with replay"),
    page("/plugins", pages.plugins, "dashboard_plugins", "Plugins: upload, state"),
    page("/plugins/{name}", pages.plugin, "dashboard_plugin", "A plugin: scan report, config, violations"),
    page("/mcp-servers", pages.mcp, "dashboard_mcp", "MCP servers and tools"),
    page("/users", pages.users, "dashboard_users", "Users and API tokens"),
    page("/audit", pages.audit, "dashboard_audit", "Audit log"),
    page("/logs", pages.logs, "dashboard_logs", "Application logs"),
    Route(
        "/panels/{plugin}/{panel}/{path:path}",
        serve_panel_file,
        public=True,
        media_type="text/html",
        summary="A file of a third-party panel, for its sandboxed frame",
        tags=TAGS,
        problems={404: "No such panel file"},
        name="dashboard_panel_file",
        in_openapi=False,
    ),
    StaticFilesRoute("/static/dashboard", STATIC, name="dashboard_static"),
]
