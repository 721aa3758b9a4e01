"""Fixtures of the event-pipeline tests: kernels with fast retry settings, private brokers."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kernel.app import Kernel, create_app
from kernel.settings import Settings, load_settings
from tests.conftest import _truncate_all, running
from tests.support.plugins import HeaderAuth
from tests.support.services import PrivateMosquitto

# A broker tuned like infra/mosquitto: room for large batches, deep queues.
TUNED = "max_inflight_messages 1000\nmax_queued_messages 100000\n"


@pytest.fixture(scope="session")
def private_broker() -> Iterator[PrivateMosquitto]:
    """One private, tuned broker for the tests that need an isolated MQTT namespace."""
    broker = PrivateMosquitto(TUNED).start()
    yield broker
    broker.close()


DATABASES = ("events", "with-auth")


@pytest.fixture(scope="session")
def postgres_databases(postgres: Any) -> dict[str, str]:
    return {name: postgres.create_database() for name in DATABASES}


@pytest.fixture
def database_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """``database_for(name)``: a database for kernels running one fixed set of plugins (a schema
    migrated by more plugins than a kernel knows would stop it). SQLite: a file per test; PostgreSQL:
    one database per name for the session, emptied after each test."""
    used: set[str] = set()
    databases = request.getfixturevalue("postgres_databases") if backend == "postgresql" else {}

    def get(name: str) -> str:
        if backend == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
        used.add(databases[name])
        return databases[name]

    yield get
    for url in used:
        asyncio.run(_truncate_all(url))


@pytest.fixture
def bus_settings(tmp_path: Path, database_for: Callable[[str], str]) -> Callable[..., Settings]:
    """Settings for an events-only kernel: a private ``memory://`` broker unless ``bus_url`` is
    given, a unique client id and share group, and retry timings short enough for tests."""

    def make(**overrides: Any) -> Settings:
        unique = uuid.uuid4().hex[:10]
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "migrate_on_start": True,
            "log_level": "warning",
            "database_url": database_for("events"),
            "bus_url": f"memory://test-{unique}",
            "bus_client_id": f"td-test-{unique}",
            "bus_share_group": f"g{unique}",
            "bus_handler_attempts": 3,
            "bus_handler_backoff_seconds": 0.05,
            "bus_handler_backoff_max_seconds": 0.2,
            "bus_handler_timeout_seconds": 2.0,
            "bus_relay_poll_seconds": 0.05,
            "plugins": {"events": {"heartbeat_seconds": 0.3, "live_poll_seconds": 0.05}},
        }
        values.update(overrides)
        return load_settings(**values)

    return make


EVENTS_ONLY = ("builtin_plugins.events",)
WITH_AUTH = ("builtin_plugins.auth", "builtin_plugins.events")


@asynccontextmanager
async def kernel_running(
    settings: Settings,
    plugins: Sequence[tuple[str, object]] = (),
    serve_bus: bool = True,
    builtins: Sequence[str] = EVENTS_ONLY,
) -> AsyncIterator[Kernel]:
    """A started kernel (no HTTP) with the events plugin (``builtins``) and ``plugins``, stopped afterwards."""
    kernel = Kernel(settings, plugins, builtins)
    try:
        await kernel.start(serve_bus=serve_bus)
        yield kernel
    finally:
        await kernel.stop()


@pytest.fixture
def app_client() -> Callable[..., Any]:
    """``async with app_client(settings, plugins) as client``: the real app in-process with the auth
    and events plugins, and the test header authentication (``X-Test-Role``) registered after them
    (the auth plugin answers ``None`` for requests without its credentials). Use settings made with
    ``database=database_for("with-auth")``."""

    def start(settings: Settings, plugins: Sequence[tuple[str, object]] = ()) -> Any:
        app = create_app(settings, [("testauth", HeaderAuth()), *plugins], builtins=WITH_AUTH, configure_logs=False)
        return running(app)

    return start


@pytest.fixture
def app_client_for() -> Callable[..., Any]:
    """``async with app_client_for(settings, plugins) as (client, kernel)``: like ``app_client`` with
    only the events plugin (and ``plugins``), also handing out the kernel."""

    @asynccontextmanager
    async def start(settings: Settings, plugins: Sequence[tuple[str, object]] = ()) -> AsyncIterator[Any]:
        app = create_app(settings, plugins, builtins=EVENTS_ONLY, configure_logs=False)
        async with running(app) as client:
            yield client, app.kernel

    return start


@pytest.fixture(autouse=True)
async def hang_report() -> AsyncIterator[None]:
    """A test of this folder still running after two minutes prints the stack of every task, so a
    hang names the coroutine it waits in."""

    async def watch() -> None:
        await asyncio.sleep(120)
        print("\n--- tasks after 120 s ---", file=sys.stderr)
        for task in asyncio.all_tasks():
            task.print_stack(file=sys.stderr)

    watcher = asyncio.get_running_loop().create_task(watch())
    yield
    watcher.cancel()
