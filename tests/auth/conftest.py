"""Auth fixtures: the real app with fast (test-only) argon2 parameters, users, and their tokens."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.service import AuthService
from kernel.app import KernelApp, create_app
from kernel.settings import Settings
from tests.conftest import running

PASSWORD = "correct horse battery staple"
# Cheap hashing for tests only; the defaults (t=3, 64 MiB, p=4) stay in production.
FAST_AUTH: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_kib": 64,
    "argon2_parallelism": 1,
    "revocation_wait_seconds": 2.0,
}
TEST_SECRET = "test-deployment-secret-0123456789abcdef"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class AuthEnv:
    """A running app with helpers to make users and log them in."""

    app: KernelApp
    client: httpx.AsyncClient
    admin: dict[str, str] = field(default_factory=dict)
    viewer: dict[str, str] = field(default_factory=dict)

    @property
    def kernel(self) -> Any:
        return self.app.kernel

    @property
    def auth(self) -> AuthService:
        return self.kernel.services["auth"]

    async def user(self, username: str, role: str = "viewer", password: str | None = PASSWORD) -> Any:
        return await self.auth.users.create(username, password, role, Actor("cli", name="tests"))

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()

    async def headers_for(self, username: str, role: str) -> dict[str, str]:
        await self.user(username, role)
        return bearer((await self.login(username))["access_token"])


def auth_settings(make_settings: Callable[..., Settings], **auth: Any) -> Settings:
    return make_settings(plugins={"auth": {**FAST_AUTH, **auth}}, secret_key=TEST_SECRET)


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return auth_settings(make_settings)


@pytest.fixture
def auth_app(make_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """``async with auth_app(**auth_settings) as env``: the app with every builtin plugin, an admin
    (``env.admin`` headers) and a viewer (``env.viewer`` headers) logged in."""

    @asynccontextmanager
    async def start(plugins: Any = (), users: bool = True, **auth: Any) -> AsyncIterator[AuthEnv]:
        app = create_app(auth_settings(make_settings, **auth), plugins, configure_logs=False)
        async with running(app) as client:
            env = AuthEnv(app, client)
            if users:
                env.admin = await env.headers_for(f"admin-{uuid.uuid4().hex[:6]}", "admin")
                env.viewer = await env.headers_for(f"viewer-{uuid.uuid4().hex[:6]}", "viewer")
            yield env
            # Let the outbox relay publish the last request's events before the app stops: a stop
            # that lands while the relay is being woken can hang the kernel's shutdown.
            await asyncio.sleep(0.1)

    return start
