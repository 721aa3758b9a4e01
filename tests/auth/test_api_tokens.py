"""API tokens: shown once, stored hashed, scoped to a role, expiring, revocable."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from builtin_plugins.auth.models import ApiToken, utcnow
from builtin_plugins.auth.tokens import sha256_hex
from tests.auth.conftest import bearer


async def test_token_lifecycle(auth_app):
    async with auth_app() as env:
        created = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "deploy bot", "expires_in_days": 30}, headers=env.admin
        )
        assert created.status_code == 201, created.text
        body = created.json()
        secret = body["token"]
        assert secret.startswith("td_") and len(secret) > 40
        assert created.headers["cache-control"] == "no-store"
        assert body["role"] == "admin" and body["prefix"] == secret[:9]

        async with env.kernel.db.session() as session:
            row = await session.get(ApiToken, __import__("uuid").UUID(body["id"]))
        assert row.token_hash == sha256_hex(secret) and secret not in row.model_dump_json()
        assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)

        me = await env.client.get("/api/v1/auth/me", headers=bearer(secret))
        assert me.status_code == 200, me.text
        assert me.json()["kind"] == "token" and me.json()["token_id"] == body["id"]
        listed = (await env.client.get("/api/v1/auth/tokens", headers=env.admin)).json()
        assert [t["id"] for t in listed["items"]] == [body["id"]]
        assert "token" not in listed["items"][0]
        assert listed["items"][0]["last_used_at"] is not None

        revoked = await env.client.delete(f"/api/v1/auth/tokens/{body['id']}", headers=env.admin)
        assert revoked.status_code == 204
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(secret))).status_code == 401
        assert (await env.client.get("/api/v1/auth/tokens", headers=env.admin)).json()["items"] == []
        with_revoked = await env.client.get("/api/v1/auth/tokens?include_revoked=true", headers=env.admin)
        assert with_revoked.json()["items"][0]["revoked_at"] is not None


async def test_token_role_never_exceeds_its_owner(auth_app):
    async with auth_app() as env:
        viewer = await env.user("robot", "viewer")
        too_high = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "x", "role": "admin", "user_id": str(viewer.id)}, headers=env.admin
        )
        assert too_high.status_code == 403
        made = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "x", "user_id": str(viewer.id)}, headers=env.admin
        )
        assert made.status_code == 201 and made.json()["role"] == "viewer"
        token = bearer(made.json()["token"])
        assert (await env.client.get("/api/v1/auth/me", headers=token)).json()["role"] == "viewer"
        assert (await env.client.post("/api/v1/auth/tokens", json={"name": "y"}, headers=token)).status_code == 403
        scoped = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "read only", "role": "viewer"}, headers=env.admin
        )
        scoped_headers = bearer(scoped.json()["token"])
        assert (await env.client.get("/api/v1/auth/me", headers=scoped_headers)).json()["role"] == "viewer"
        assert (await env.client.get("/api/v1/users", headers=scoped_headers)).status_code == 403
        # a viewer may read their own tokens, not anyone else's
        mine = await env.client.get("/api/v1/auth/tokens", headers=token)
        assert mine.status_code == 200 and len(mine.json()["items"]) == 1
        admin_id = (await env.client.get("/api/v1/auth/me", headers=env.admin)).json()["id"]
        others = await env.client.get(f"/api/v1/auth/tokens?user_id={admin_id}", headers=token)
        assert others.status_code == 403
        # demoting the owner demotes the owner's tokens at once
        second = await env.user("second-admin", "admin")
        made = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "ops", "user_id": str(second.id)}, headers=env.admin
        )
        ops = bearer(made.json()["token"])
        assert (await env.client.get("/api/v1/auth/me", headers=ops)).json()["role"] == "admin"
        demoted = await env.client.patch(f"/api/v1/users/{second.id}", json={"role": "viewer"}, headers=env.admin)
        assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"
        assert (await env.client.get("/api/v1/auth/me", headers=ops)).json()["role"] == "viewer"
        assert (await env.client.post("/api/v1/auth/tokens", json={"name": "z"}, headers=ops)).status_code == 403


async def test_expired_token_is_refused(auth_app):
    async with auth_app() as env:
        made = await env.client.post("/api/v1/auth/tokens", json={"name": "short"}, headers=env.admin)
        token = bearer(made.json()["token"])
        async with env.kernel.db.session() as session:
            await session.exec(sa.update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
            await session.commit()
        env.auth.authenticator.evict(tokens=[made.json()["id"]])
        assert (await env.client.get("/api/v1/auth/me", headers=token)).status_code == 401
        too_long = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "forever", "expires_in_days": 3000}, headers=env.admin
        )
        assert too_long.status_code == 422


async def test_token_pages(auth_app):
    async with auth_app() as env:
        ids = []
        for index in range(5):
            made = await env.client.post("/api/v1/auth/tokens", json={"name": f"t{index}"}, headers=env.admin)
            ids.append(made.json()["id"])
        seen, cursor = [], None
        while True:
            query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = (await env.client.get("/api/v1/auth/tokens" + query, headers=env.admin)).json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        bad = await env.client.get("/api/v1/auth/tokens?cursor=not-a-cursor", headers=env.admin)
        assert bad.status_code == 400 and bad.json()["type"] == "urn:taylordash:problem:invalid-cursor"
