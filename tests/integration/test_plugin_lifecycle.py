"""Plugins inside the running app: isolation of failures, default deny, plugin settings."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field

from kernel.app import create_app
from kernel.errors import ConfigError, StartupError
from sdk import RequestContext, Route, hookimpl
from tests.conftest import running
from tests.support.plugins import ExtraPermissions, HeaderAuth

ADMIN = {"x-test-role": "admin"}


async def hello(ctx: RequestContext) -> dict[str, str]:
    return {"hello": "world"}


class StartupFails:
    """Raises in startup: must be disabled, with its routes gone, while the app starts."""

    @hookimpl
    def startup(self, kernel) -> None:
        raise RuntimeError("cannot reach its upstream")

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/fragile", hello, permission="plugins:read")]


class AsyncStartupFails:
    @hookimpl
    async def startup(self, kernel) -> None:
        raise ValueError("async failure")


class Healthy:
    started = False

    @hookimpl
    async def startup(self, kernel) -> None:
        kernel.services["healthy"] = self

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/healthy", hello, permission="plugins:read")]


async def test_failing_startup_disables_only_that_plugin(start_app, caplog: pytest.LogCaptureFixture):
    healthy = Healthy()
    plugins = [
        ("auth-test", HeaderAuth()),
        ("fragile", StartupFails()),
        ("async", AsyncStartupFails()),
        ("healthy", healthy),
    ]
    async with start_app(plugins) as client:
        fragile = await client.get("/api/v1/fragile", headers=ADMIN)
        ok = await client.get("/api/v1/healthy", headers=ADMIN)
        listing = await client.get("/api/v1/plugins", headers=ADMIN)
    assert fragile.status_code == 404
    assert ok.status_code == 200 and ok.json() == {"hello": "world"}
    states = {p["name"]: p for p in listing.json()["items"]}
    assert states["fragile"]["active"] is False
    assert states["fragile"]["error"] == "hook startup raised RuntimeError('cannot reach its upstream')"
    assert states["async"]["error"] == "hook startup raised ValueError('async failure')"
    assert states["healthy"]["active"] is True


class Undeclared:
    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/open-door", hello)]


class UnknownPermission:
    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/odd", hello, permission="odd:read")]


class Duplicate:
    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/plugins", hello, permission="plugins:read")]


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (Undeclared(), "plugin 'bad': route GET /api/v1/open-door declares no permission"),
        (UnknownPermission(), "names the unregistered permission 'odd:read'"),
        (Duplicate(), "plugin 'bad': route GET /api/v1/plugins is already served by plugin 'plugins'"),
    ],
)
async def test_route_declarations_are_checked_at_startup(settings, plugin, message):
    app = create_app(settings, [("bad", plugin)], configure_logs=False)
    with pytest.raises(StartupError) as caught:
        async with running(app):
            pass
    assert message in str(caught.value)


class Lifecycle:
    """Records its lifecycle."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    async def startup(self, kernel) -> None:
        self.calls.append("startup")

    @hookimpl
    async def shutdown(self, kernel) -> None:
        self.calls.append("shutdown")


class Tracked(Lifecycle):
    """Records its lifecycle, and claims a path another plugin already serves."""

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [Route("/api/v1/plugins", hello, permission="plugins:read")]


async def test_a_start_that_fails_after_the_plugins_started_shuts_them_down(settings):
    """Plugins start before routes are checked: a refused start must not leave their work running
    (here: the monitoring plugin's log handler on the root logger, bound to this event loop)."""
    root = logging.getLogger()
    before = set(root.handlers)
    tracked = Tracked()
    app = create_app(settings, [("tracked", tracked)], configure_logs=False)
    with pytest.raises(StartupError, match="already served by plugin 'plugins'"):
        async with running(app):
            pass
    assert tracked.calls == ["startup", "shutdown"]
    assert set(root.handlers) == before
    assert app.kernel.db.engine.pool.checkedout() == 0


async def test_a_stop_finishes_every_step_when_one_of_them_fails(settings):
    plugin = Lifecycle()
    kernel = create_app(settings, [("lifecycle", plugin)], configure_logs=False).kernel
    await kernel.start()

    async def broken_flush(grace_seconds: float) -> None:
        raise RuntimeError("the outbox could not be read")

    kernel.bus.relay.flush = broken_flush  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="could not be read"):
        await kernel.stop()
    # The relay's connection (and the leader lock it holds) is released, the plugins shut down,
    # the pool is empty: nothing of this kernel is left running.
    assert kernel.bus.relay.conn._conn is None
    assert plugin.calls == ["startup", "shutdown"]
    assert kernel.db.engine.pool.checkedout() == 0


class WithSettings:
    class Config(BaseModel):
        greeting: str = "hi"
        retries: int = Field(3, ge=0, le=10)

    @hookimpl
    def plugin_config_schema(self) -> type[BaseModel]:
        return self.Config

    @hookimpl
    def register_routes(self, kernel) -> list[Route]:
        async def show(ctx: RequestContext) -> dict[str, object]:
            return ctx.kernel.plugin_config("configured").model_dump()

        return [Route("/api/v1/configured", show, permission="items:read")]


async def test_plugin_settings_are_validated_and_handed_out(make_settings):
    settings = make_settings(plugins={"configured": {"greeting": "hello", "retries": "5"}})
    plugins = [("t", HeaderAuth()), ("p", ExtraPermissions({"items:read": ["viewer"]})), ("configured", WithSettings())]
    async with running(create_app(settings, plugins, configure_logs=False)) as client:
        response = await client.get("/api/v1/configured", headers={"x-test-role": "viewer"})
    assert response.json() == {"greeting": "hello", "retries": 5}


async def test_bad_plugin_settings_stop_the_start_with_one_line_each(make_settings):
    settings = make_settings(plugins={"configured": {"retries": "99", "colour": "x"}})
    kernel_app = create_app(settings, [("configured", WithSettings())], configure_logs=False)
    with pytest.raises(ConfigError) as caught:
        await kernel_app.kernel.start()
    await kernel_app.kernel.db.dispose()
    assert caught.value.problems == ["TD_PLUGINS__CONFIGURED__RETRIES: Input should be less than or equal to 10"]
