"""Two instances of one deployment, each a real ``taylordash serve`` process, sharing PostgreSQL and
Mosquitto: a logout or an admin revocation on one is refused by the other at its next request, although
each instance caches sessions for minutes (``cache_seconds=300``): the bus broadcast evicts them."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.service import AuthService
from kernel.app import Kernel
from kernel.settings import load_settings
from tests.auth.conftest import FAST_AUTH, PASSWORD, TEST_SECRET, bearer
from tests.support.cli import clean_env, serving

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]
ROUNDS = 5


async def create_users(database_url: str, data_dir: Path) -> str:
    """Migrate the shared database and create ``root`` (admin) and ``victim`` (viewer); the victim's id."""
    kernel = Kernel(load_settings(database_url=database_url, data_dir=data_dir, secret_key=TEST_SECRET))
    try:
        await kernel.prepare_schema(migrate=True)
        auth = AuthService(kernel, AuthSettings(**FAST_AUTH))
        await auth.users.create("root", PASSWORD, "admin", Actor("cli"))
        return str((await auth.users.create("victim", PASSWORD, "viewer", Actor("cli"))).id)
    finally:
        await kernel.db.dispose()


def instance_env(name: str, database_url: str, broker: tuple[str, int], group: str, tmp_path: Path) -> dict[str, str]:
    settings = {f"TD_PLUGINS__AUTH__{key.upper()}": str(value) for key, value in FAST_AUTH.items()}
    return clean_env(
        TD_DATA_DIR=str(tmp_path / name),
        TD_DATABASE_URL=database_url,
        TD_BUS_URL=f"mqtt://{broker[0]}:{broker[1]}",
        TD_BUS_CLIENT_ID=f"{group}-{name}",
        TD_BUS_SHARE_GROUP=group,
        TD_SECRET_KEY=TEST_SECRET,
        TD_LOG_LEVEL="warning",
        TD_PLUGINS__AUTH__CACHE_SECONDS="300",
        TD_MIGRATE_ON_START="true",
        **settings,
    )


def test_logout_and_admin_revocation_reach_the_other_instance(postgres, mqtt_broker, tmp_path: Path):
    database_url = postgres.create_database()
    victim_id = asyncio.run(create_users(database_url, tmp_path / "setup"))
    group = f"authtest{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        urls = [
            stack.enter_context(
                serving(instance_env(name, database_url, mqtt_broker, group, tmp_path), log=tmp_path / f"{name}.log")
            )
            for name in ("a", "b")
        ]
        asyncio.run(run_scenario(*urls, victim_id))


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def run_scenario(url_a: str, url_b: str, victim_id: str) -> None:
    async with httpx.AsyncClient(base_url=url_a) as a, httpx.AsyncClient(base_url=url_b) as b:
        await scenario(a, b, victim_id)


async def scenario(a: httpx.AsyncClient, b: httpx.AsyncClient, victim_id: str) -> None:
    admin = await login(a, "root")
    for _ in range(ROUNDS):  # logout on one instance → refused by the other
        for here, there in ((a, b), (b, a)):
            victim = await login(here, "victim")
            assert (await there.get("/api/v1/auth/me", headers=victim)).status_code == 200  # now cached there
            assert (await here.post("/api/v1/auth/logout", headers=victim)).status_code == 204
            refused = await there.get("/api/v1/auth/me", headers=victim)
            assert refused.status_code == 401, refused.text

    for _ in range(ROUNDS):  # an admin on A revokes the user's sessions → refused by B
        victim = await login(b, "victim")
        assert (await b.get("/api/v1/auth/me", headers=victim)).status_code == 200
        revoked = await a.delete(f"/api/v1/users/{victim_id}/sessions", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
        assert (await b.get("/api/v1/auth/me", headers=victim)).status_code == 401

    # a role change on A applies on B at once (here: to an API token of the user)
    assert (await a.patch(f"/api/v1/users/{victim_id}", json={"role": "admin"}, headers=admin)).status_code == 200
    made = await a.post("/api/v1/auth/tokens", json={"name": "bot", "user_id": victim_id}, headers=admin)
    token = bearer(made.json()["token"])
    assert (await b.get("/api/v1/auth/me", headers=token)).json()["role"] == "admin"
    assert (await a.patch(f"/api/v1/users/{victim_id}", json={"role": "viewer"}, headers=admin)).status_code == 200
    assert (await b.get("/api/v1/auth/me", headers=token)).json()["role"] == "viewer"
    assert (await a.delete(f"/api/v1/auth/tokens/{made.json()['id']}", headers=admin)).status_code == 204
    assert (await b.get("/api/v1/auth/me", headers=token)).status_code == 401

    victim = await login(a, "victim")
    assert (await b.get("/api/v1/auth/me", headers=victim)).status_code == 200
    assert (await a.patch(f"/api/v1/users/{victim_id}", json={"active": False}, headers=admin)).status_code == 200
    assert (await b.get("/api/v1/auth/me", headers=victim)).status_code == 401
