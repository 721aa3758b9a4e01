"""Fixtures shared by the whole suite: the same tests run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from kernel.app import KernelApp, create_app
from kernel.settings import Settings, load_settings
from tests.support import services

BACKENDS = ("sqlite", "postgresql")


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(server_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PostgresServer:
    """Creates and drops throw-away databases on one PostgreSQL server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.created: list[str] = []

    def create_database(self) -> str:
        name = f"td_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(self.url, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(self.url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    url = services.postgres_server_url()
    if url is None:
        services.unavailable("no PostgreSQL server on 127.0.0.1:5432 and no binaries to start one")
    try:
        asyncio.run(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        services.unavailable(f"PostgreSQL at {url} does not answer: {exc}")
    server = PostgresServer(url)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def mqtt_broker() -> tuple[str, int]:
    address = services.mosquitto_address()
    if address is None:
        services.unavailable("no MQTT broker on 127.0.0.1:1883 and no mosquitto binary to start one")
    return address


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def shared_postgres_url(postgres: PostgresServer) -> str:
    return postgres.create_database()


async def _truncate_all(url: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database for one test: a fresh SQLite file, or the session's PostgreSQL database emptied after
    the test (its schema is kept: migrating once per session keeps the suite fast)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'taylordash.db'}"
        return
    url = request.getfixturevalue("shared_postgres_url")
    yield url
    asyncio.run(_truncate_all(url))


@pytest.fixture
def fresh_database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the current backend, for tests that migrate up and down."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "migrate_on_start": True,
            "log_level": "warning",
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@asynccontextmanager
async def running(app: KernelApp) -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app`` (lifespan included) and yield an HTTP client bound to it in-process."""
    async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def start_app(settings: Settings) -> Callable[..., Any]:
    """``async with start_app(plugins=[...]) as client`` runs the real app against the test database."""

    def start(plugins: Sequence[tuple[str, object]] = (), settings_: Settings | None = None, **kwargs: Any) -> Any:
        return running(create_app(settings_ or settings, plugins, configure_logs=False, **kwargs))

    return start
