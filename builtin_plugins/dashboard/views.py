"""What every page shares: who is looking, the templates, the navigation, and the login redirect."""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, FunctionLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from builtin_plugins.dashboard.api import Api
from builtin_plugins.dashboard.config import DashboardSettings
from builtin_plugins.dashboard.session import Csrf
from sdk import NavItem, Principal, ProblemError, RequestContext

HERE = Path(__file__).resolve().parent


def static_version() -> str:
    """A digest of the static files: asset URLs change when the files do, and every worker and instance
    of one release computes the same one."""
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(HERE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


STATIC_VERSION = static_version()


def _plugin_template(name: str) -> str | None:
    """Templates of other plugins' panels, named ``<package>:<path inside it>``."""
    package, sep, path = name.partition(":")
    if not sep:
        return None
    try:
        return importlib.resources.files(package).joinpath(path).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


def environment() -> Environment:
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(HERE / "templates"), FunctionLoader(_plugin_template)]),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["static_version"] = STATIC_VERSION
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


@dataclass
class Dashboard:
    """``kernel.services["dashboard"]``: templates, settings and the CSRF key."""

    kernel: Any
    settings: DashboardSettings
    csrf: Csrf
    env: Environment = field(default_factory=environment)

    def nav(self, principal: Principal) -> list[NavItem]:
        allows = self.kernel.permissions.allows
        items = [item for _, item in self.kernel.nav_items if allows(principal, item.permission)]
        return sorted(items, key=lambda i: (i.order, i.label))

    def kiosk_page(self, principal: Principal) -> str | None:
        return self.settings.kiosk.get(principal.name)


@dataclass
class View:
    """One page request: the caller, an API client on their behalf, and the shared context."""

    ctx: RequestContext
    dashboard: Dashboard
    principal: Principal
    api: Api
    kiosk: bool

    @property
    def request(self) -> Request:
        return self.ctx.request

    def can(self, permission: str) -> bool:
        return self.ctx.kernel.permissions.allows(self.principal, permission)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = self.dashboard.env.get_template(template)
        html = page.render(
            principal=self.principal,
            can=self.can,
            csrf_token=self.dashboard.csrf.token(self.principal.session_id or ""),
            nav=self.dashboard.nav(self.principal),
            path=self.request.url.path,
            kiosk=self.kiosk,
            **context,
        )
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def service(ctx: RequestContext) -> Dashboard:
    return ctx.kernel.services["dashboard"]


async def who(ctx: RequestContext) -> Principal | None:
    """The caller, or ``None`` when the request carries no valid credential."""
    try:
        return await ctx.kernel.authenticate(ctx.request)
    except ProblemError:
        return None


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def open_view(ctx: RequestContext) -> View | Response:
    """The view of an authenticated caller; a redirect to the login page (or to the kiosk page of a
    kiosk account) otherwise."""
    principal = await who(ctx)
    if principal is None:
        return login_redirect(ctx.request)
    dashboard = service(ctx)
    kiosk_page = dashboard.kiosk_page(principal)
    path = ctx.request.url.path
    # A kiosk account stays on its page; task details open from a board on it.
    if kiosk_page is not None and path != kiosk_page.split("?", 1)[0] and not path.startswith("/tasks/"):
        return RedirectResponse(kiosk_page, status_code=303)
    kiosk = kiosk_page is not None or ctx.request.query_params.get("kiosk") == "1"
    return View(ctx, dashboard, principal, Api(ctx.request), kiosk)


def forbidden(view: View, permission: str) -> HTMLResponse:
    return view.render("error.html", status=403, title="Not allowed", message=f"This page needs {permission!r}.")
