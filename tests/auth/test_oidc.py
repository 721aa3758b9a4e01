"""OpenID Connect login against a provider served inside the test, mapped to local users."""

from __future__ import annotations

from typing import Any

import httpx
from joserfc.jwk import RSAKey

from builtin_plugins.auth.audit import Actor
from tests.auth.conftest import bearer
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, serve_provider


def oidc_settings(provider: Provider, **extra: Any) -> dict[str, Any]:
    return {"oidc_issuer": provider.issuer, "oidc_client_id": CLIENT_ID, "oidc_client_secret": CLIENT_SECRET, **extra}


async def oidc_login(env, provider: Provider, claims: dict[str, Any]) -> httpx.Response:
    """The browser's part: start at the app, pass the provider, come back to the callback."""
    provider.user = claims
    start = await env.client.get("/api/v1/auth/oidc/login")
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith(f"{provider.issuer}/authorize?")
    assert "td_oidc" in start.headers["set-cookie"] and "HttpOnly" in start.headers["set-cookie"]
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(start.headers["location"])
    assert approved.status_code == 302
    callback = approved.headers["location"]
    assert callback.startswith("http://testserver/api/v1/auth/oidc/callback?")
    return await env.client.get(callback)


async def test_oidc_login_maps_to_local_users(auth_app):
    async with serve_provider() as provider, auth_app(users=False, **oidc_settings(provider)) as env:
        local = await env.auth.users.create("nina", None, "admin", Actor("cli"))
        answer = await oidc_login(env, provider, {"sub": "u-1", "preferred_username": "Nina", "name": "Nina N"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        tokens = answer.json()
        me = (await env.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))).json()
        assert me["id"] == str(local.id) and me["role"] == "admin"

        # bound now: a later login is found by subject even if the name changes at the provider
        again = await oidc_login(env, provider, {"sub": "u-1", "preferred_username": "nina-renamed"})
        assert again.status_code == 200
        # another account claiming the same name is not that user
        impostor = await oidc_login(env, provider, {"sub": "u-2", "preferred_username": "nina"})
        assert impostor.status_code == 403
        assert impostor.json()["type"] == "urn:taylordash:problem:oidc-unmapped"
        unknown = await oidc_login(env, provider, {"sub": "u-3", "preferred_username": "oscar"})
        assert unknown.status_code == 403
        audit = (await env.client.get("/api/v1/audit?action=auth.login", headers=bearer(tokens["access_token"]))).json()
        outcomes = sorted(e["outcome"] for e in audit["items"] if e["details"].get("method") == "oidc")
        assert outcomes == ["denied", "denied", "success", "success"]
        sessions = await env.client.get("/api/v1/auth/sessions", headers=bearer(tokens["access_token"]))
        assert {s["auth_method"] for s in sessions.json()["items"]} == {"oidc"}


async def test_oidc_auto_create(auth_app):
    async with (
        serve_provider() as provider,
        auth_app(users=False, **oidc_settings(provider, oidc_auto_create=True)) as env,
    ):
        answer = await oidc_login(env, provider, {"sub": "u-9", "preferred_username": "Pat", "name": "Pat P"})
        assert answer.status_code == 200, answer.text
        me = (await env.client.get("/api/v1/auth/me", headers=bearer(answer.json()["access_token"]))).json()
        assert me["username"] == "pat" and me["role"] == "viewer"
        password_login = await env.client.post("/api/v1/auth/login", json={"username": "pat", "password": "x" * 12})
        assert password_login.status_code == 401  # OIDC-only accounts have no password
        spec = (await env.client.get("/openapi.json")).json()
    assert spec["paths"]["/api/v1/auth/oidc/callback"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/auth/oidc/login"]["get"]["security"] == []


async def test_oidc_refuses_forged_or_replayed_answers(auth_app):
    async with (
        serve_provider() as provider,
        auth_app(users=False, **oidc_settings(provider, oidc_auto_create=True)) as env,
    ):
        provider.sign_with = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        forged = await oidc_login(env, provider, {"sub": "u-5", "preferred_username": "quinn"})
        assert forged.status_code == 401 and forged.json()["type"] == "urn:taylordash:problem:oidc-failed"
        provider.sign_with = None
        provider.wrong_nonce = True
        replayed = await oidc_login(env, provider, {"sub": "u-5", "preferred_username": "quinn"})
        assert replayed.status_code == 401
        provider.wrong_nonce = False

        env.client.cookies.clear()
        no_cookie = await env.client.get("/api/v1/auth/oidc/callback?code=abc&state=xyz")
        assert no_cookie.status_code == 401
        env.client.cookies.set("td_oidc", "eyJ4IjoxfQ==.deadbeef", path="/api/v1/auth/oidc")
        tampered = await env.client.get("/api/v1/auth/oidc/callback?code=abc&state=xyz")
        assert tampered.status_code == 401
        ok = await oidc_login(env, provider, {"sub": "u-5", "preferred_username": "quinn"})
        assert ok.status_code == 200, ok.text


async def test_oidc_routes_exist_only_when_configured(auth_app):
    async with auth_app(users=False) as env:
        assert (await env.client.get("/api/v1/auth/oidc/login")).status_code == 404
