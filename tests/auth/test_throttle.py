"""Login throttling per username and per client address, with exponential lockout."""

from __future__ import annotations

import asyncio

from tests.auth.conftest import PASSWORD

FAST_LOCKOUT = {"throttle_user_failures": 3, "throttle_ip_failures": 6, "throttle_base_seconds": 1.0}


async def attempt(env, username: str, password: str = "not the password"):
    return await env.client.post("/api/v1/auth/login", json={"username": username, "password": password})


async def test_per_username_lockout_grows_and_ends(auth_app):
    async with auth_app(users=False, **FAST_LOCKOUT) as env:
        await env.user("leo", "viewer")
        statuses = [(await attempt(env, "leo")).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        locked = await attempt(env, "leo", PASSWORD)  # even the right password waits
        assert locked.status_code == 429
        assert locked.headers["retry-after"] == "1"
        assert locked.json()["type"] == "urn:taylordash:problem:too-many-requests"
        unknown = [(await attempt(env, "nobody-here")).status_code for _ in range(4)]
        assert unknown == [401, 401, 401, 429]  # the same for names that do not exist
        await asyncio.sleep(1.1)
        assert (await attempt(env, "leo")).status_code == 401  # 4th failure: locked for 2 s
        second = await attempt(env, "leo", PASSWORD)
        assert second.status_code == 429 and int(second.headers["retry-after"]) == 2


async def test_success_clears_the_username_count(auth_app):
    async with auth_app(users=False, **FAST_LOCKOUT) as env:
        await env.user("ned", "viewer")
        assert [(await attempt(env, "ned")).status_code for _ in range(2)] == [401, 401]
        assert (await attempt(env, "ned", PASSWORD)).status_code == 200
        assert [(await attempt(env, "ned")).status_code for _ in range(2)] == [401, 401]
        assert (await attempt(env, "ned", PASSWORD)).status_code == 200


async def test_per_address_lockout(auth_app):
    async with auth_app(users=False, **FAST_LOCKOUT) as env:
        await env.user("mia", "viewer")
        results = [(await attempt(env, f"spray-{i}")).status_code for i in range(6)]
        assert results == [401] * 6
        assert (await attempt(env, "mia", PASSWORD)).status_code == 429
        assert (await env.client.get("/health/live")).status_code == 200
