"""The users admin API: create, list, update role/active, reset password, soft delete, sessions."""

from __future__ import annotations

from tests.auth.conftest import PASSWORD, bearer


async def test_create_list_get_update(auth_app):
    async with auth_app() as env:
        created = await env.client.post(
            "/api/v1/users",
            json={"username": "Hannah", "password": PASSWORD, "role": "viewer", "display_name": "Hannah A."},
            headers=env.admin,
        )
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["username"] == "hannah" and user["role"] == "viewer" and user["active"] is True
        assert "password_hash" not in user and "oidc_subject" not in user
        duplicate = await env.client.post(
            "/api/v1/users", json={"username": "HANNAH", "password": PASSWORD, "role": "viewer"}, headers=env.admin
        )
        assert duplicate.status_code == 409
        bad_name = await env.client.post(
            "/api/v1/users", json={"username": "no spaces", "password": PASSWORD, "role": "viewer"}, headers=env.admin
        )
        assert bad_name.status_code == 422
        bad_role = await env.client.post(
            "/api/v1/users", json={"username": "ok", "password": PASSWORD, "role": "root"}, headers=env.admin
        )
        assert bad_role.status_code == 422

        fetched = await env.client.get(f"/api/v1/users/{user['id']}", headers=env.admin)
        assert fetched.json()["display_name"] == "Hannah A."
        names = [u["username"] for u in (await env.client.get("/api/v1/users", headers=env.admin)).json()["items"]]
        assert "hannah" in names and names == sorted(names)
        viewers = (await env.client.get("/api/v1/users?role=viewer&q=ANN", headers=env.admin)).json()["items"]
        assert [u["username"] for u in viewers] == ["hannah"]
        first = (await env.client.get("/api/v1/users?limit=1", headers=env.admin)).json()
        second = (
            await env.client.get(f"/api/v1/users?limit=1&cursor={first['next_cursor']}", headers=env.admin)
        ).json()
        assert first["items"][0]["username"] < second["items"][0]["username"]

        session = await env.login("hannah")
        promoted = await env.client.patch(f"/api/v1/users/{user['id']}", json={"role": "admin"}, headers=env.admin)
        assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
        me = await env.client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))
        assert me.json()["role"] == "admin"  # role changes apply to live sessions at once
        empty = await env.client.patch(f"/api/v1/users/{user['id']}", json={}, headers=env.admin)
        assert empty.status_code == 422

        disabled = await env.client.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=env.admin)
        assert disabled.json()["active"] is False
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(session["access_token"]))).status_code == 401
        refused = await env.client.post("/api/v1/auth/login", json={"username": "hannah", "password": PASSWORD})
        assert refused.status_code == 401


async def test_reset_password_and_sessions(auth_app):
    async with auth_app() as env:
        user = await env.user("ivan", "viewer")
        one, two = await env.login("ivan"), await env.login("ivan")
        listed = await env.client.get(f"/api/v1/users/{user.id}/sessions", headers=env.admin)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2
        assert listed.json()["items"][0]["ip"] == "127.0.0.1"
        mine = await env.client.get("/api/v1/auth/sessions", headers=bearer(one["access_token"]))
        assert len(mine.json()["items"]) == 2

        session_id = (await env.client.get("/api/v1/auth/me", headers=bearer(one["access_token"]))).json()["session_id"]
        revoked = await env.client.delete(f"/api/v1/users/{user.id}/sessions/{session_id}", headers=env.admin)
        assert revoked.status_code == 204
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(one["access_token"]))).status_code == 401
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(two["access_token"]))).status_code == 200
        active = await env.client.get(f"/api/v1/users/{user.id}/sessions?active=true", headers=env.admin)
        assert len(active.json()["items"]) == 1
        admin_id = (await env.client.get("/api/v1/auth/me", headers=env.admin)).json()["id"]
        two_id = (await env.client.get("/api/v1/auth/me", headers=bearer(two["access_token"]))).json()["session_id"]
        wrong_user = await env.client.delete(f"/api/v1/users/{admin_id}/sessions/{two_id}", headers=env.admin)
        assert wrong_user.status_code == 404

        weak = await env.client.post(
            f"/api/v1/users/{user.id}/password", json={"new_password": "ivan"}, headers=env.admin
        )
        assert weak.status_code == 422
        reset = await env.client.post(
            f"/api/v1/users/{user.id}/password", json={"new_password": "reset by the admin 42"}, headers=env.admin
        )
        assert reset.status_code == 204
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(two["access_token"]))).status_code == 401
        await env.login("ivan", "reset by the admin 42")
        all_gone = await env.client.delete(f"/api/v1/users/{user.id}/sessions", headers=env.admin)
        assert all_gone.status_code == 200 and all_gone.json() == {"revoked": 1}


async def test_soft_delete_and_last_admin(auth_app):
    async with auth_app() as env:
        admin_id = (await env.client.get("/api/v1/auth/me", headers=env.admin)).json()["id"]
        for change in ({"role": "viewer"}, {"active": False}):
            refused = await env.client.patch(f"/api/v1/users/{admin_id}", json=change, headers=env.admin)
            assert refused.status_code == 409 and refused.json()["type"] == "urn:taylordash:problem:last-admin"
        assert (await env.client.delete(f"/api/v1/users/{admin_id}", headers=env.admin)).status_code == 409

        user = await env.user("judy", "viewer")
        assert (await env.client.delete(f"/api/v1/users/{user.id}", headers=env.admin)).status_code == 204
        assert (await env.client.delete(f"/api/v1/users/{user.id}", headers=env.admin)).status_code == 404
        kept = await env.client.get(f"/api/v1/users/{user.id}", headers=env.admin)
        assert kept.status_code == 200 and kept.json()["deleted_at"] is not None
        names = [u["username"] for u in (await env.client.get("/api/v1/users", headers=env.admin)).json()["items"]]
        assert "judy" not in names
        with_deleted = await env.client.get("/api/v1/users?include_deleted=true", headers=env.admin)
        assert "judy" in [u["username"] for u in with_deleted.json()["items"]]
        reuse = await env.client.post(
            "/api/v1/users", json={"username": "judy", "password": PASSWORD, "role": "viewer"}, headers=env.admin
        )
        assert reuse.status_code == 409
        missing = await env.client.get("/api/v1/users/00000000-0000-0000-0000-000000000000", headers=env.admin)
        assert missing.status_code == 404
        not_uuid = await env.client.get("/api/v1/users/not-a-uuid", headers=env.admin)
        assert not_uuid.status_code == 404
