"""Login, the caller, refresh rotation and reuse, logout, password change."""

from __future__ import annotations

from tests.auth.conftest import PASSWORD, bearer


async def test_login_me_refresh_logout(auth_app):
    async with auth_app(users=False) as env:
        user = await env.user("alice", "admin")
        tokens = await env.login("Alice")
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
        me = await env.client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
        assert me.status_code == 200, me.text
        body = me.json()
        assert body["id"] == str(user.id) and body["username"] == "alice" and body["role"] == "admin"
        assert body["kind"] == "user" and body["session_id"]
        assert "users:admin" in body["permissions"]

        rotated = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200, rotated.text
        assert rotated.headers["cache-control"] == "no-store"
        new = rotated.json()
        assert new["refresh_token"] != tokens["refresh_token"]
        me2 = await env.client.get("/api/v1/auth/me", headers=bearer(new["access_token"]))
        assert me2.json()["session_id"] == body["session_id"]

        out = await env.client.post("/api/v1/auth/logout", headers=bearer(new["access_token"]))
        assert out.status_code == 204, out.text
        for token in (tokens["access_token"], new["access_token"]):
            refused = await env.client.get("/api/v1/auth/me", headers=bearer(token))
            assert refused.status_code == 401
            assert refused.json()["type"] == "urn:taylordash:problem:invalid-token"
        again = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
        assert again.status_code == 401
        assert (await env.client.post("/api/v1/auth/logout", headers=bearer(new["access_token"]))).status_code == 204


async def test_failures_do_not_reveal_whether_a_user_exists(auth_app):
    async with auth_app(users=False) as env:
        await env.user("bob", "viewer")
        disabled = await env.user("carol", "viewer")
        await env.auth.users.update(disabled.id, env.auth_actor if hasattr(env, "auth_actor") else _cli(), active=False)
        answers = [
            await env.client.post("/api/v1/auth/login", json={"username": name, "password": password})
            for name, password in (("bob", "wrong password!!"), ("nobody", PASSWORD), ("carol", PASSWORD))
        ]
    bodies = []
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        bodies.append({k: v for k, v in answer.json().items() if k != "instance"})
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["type"] == "urn:taylordash:problem:invalid-credentials"


def _cli():
    from builtin_plugins.auth.audit import Actor

    return Actor("cli", name="tests")


JSON = {"content-type": "application/json"}


async def test_bad_login_input_is_a_problem_never_a_500(auth_app):
    async with auth_app(users=False) as env:
        url = "/api/v1/auth/login"
        cases = [
            (await env.client.post(url, content=b"{nope", headers={"content-type": "application/json"}), 400),
            (await env.client.post(url, json={"username": "x"}), 422),
            (await env.client.post(url, json=[1, 2]), 422),
            (await env.client.post(url, json={"username": "x", "password": "y" * 2_000_000}), 413),
            (await env.client.post(url, content=b"a=b", headers={"content-type": "text/plain"}), 415),
            (await env.client.post(url, json={"username": "\x00\u202e" * 20, "password": "p"}), 422),
            (await env.client.post(url, content=rb'{"username": "a\ud800", "password": "p"}', headers=JSON), 400),
            (await env.client.post(url, json={"username": "\u202e" * 20, "password": "p"}), 401),
            (await env.client.post("/api/v1/auth/refresh", json={"refresh_token": "tdr_zz_1_abc"}), 401),
            (await env.client.post("/api/v1/auth/refresh", json={}), 422),
            (await env.client.post("/api/v1/auth/logout"), 401),
        ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_forged_expired_and_foreign_tokens_are_refused(auth_app):
    import base64
    import json

    from builtin_plugins.auth.tokens import AccessTokens

    async with auth_app() as env:
        good = env.admin["Authorization"].removeprefix("Bearer ")
        header, payload, signature = good.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))

        def encode(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        session_id = claims["sid"]
        expired = AccessTokens(b"test-deployment-secret-0123456789abcdef", "HS256", -120)
        foreign = AccessTokens(b"another deployment's secret", "HS256", 900)
        eddsa = AccessTokens(b"test-deployment-secret-0123456789abcdef", "EdDSA", 900)
        forged = {
            "tampered payload": f"{header}.{encode({**claims, 'sub': 'someone-else'})}.{signature}",
            "tampered signature": f"{header}.{payload}.{signature[:-3]}AAA",
            "alg none": f"{encode({'alg': 'none', 'typ': 'at+jwt'})}.{payload}.",
            "wrong algorithm": eddsa.issue(claims["sub"], session_id),
            "expired": expired.issue(claims["sub"], session_id),
            "other deployment": foreign.issue(claims["sub"], session_id),
            "garbage jwt": "eyJhbGciOi.eyJzdWIi.c2ln",
            "unknown api token": "td_" + "A" * 43,
            "not ours": "some-opaque-thing",
        }
        for name, token in forged.items():
            response = await env.client.get("/api/v1/auth/me", headers=bearer(token))
            assert response.status_code == 401, (name, response.text)
            assert response.headers["content-type"] == "application/problem+json", name
        assert (await env.client.get("/api/v1/auth/me", headers=env.admin)).status_code == 200


async def test_eddsa_tokens(auth_app):
    import base64
    import json

    async with auth_app(jwt_algorithm="EdDSA") as env:
        token = env.viewer["Authorization"].removeprefix("Bearer ")
        header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        assert header["alg"] == "Ed25519" and header["typ"] == "at+jwt"
        assert (await env.client.get("/api/v1/auth/me", headers=env.viewer)).status_code == 200


async def test_refresh_reuse_revokes_the_whole_session(auth_app):
    async with auth_app(users=False) as env:
        await env.user("dave", "viewer")
        first = await env.login("dave")
        second = (await env.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
        third = (await env.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(third["access_token"]))).status_code == 200
        reused = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reused.status_code == 401
        assert reused.json()["type"] == "urn:taylordash:problem:refresh-token-reused"
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(third["access_token"]))).status_code == 401
        latest = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
        assert latest.status_code == 401
        other = await env.login("dave")  # a new login is a new, unaffected session
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(other["access_token"]))).status_code == 200


async def test_refresh_token_forgery_and_expiry(auth_app):
    async with auth_app(users=False) as env:
        await env.user("erin", "viewer")
        tokens = await env.login("erin")
        prefix, _, mac = tokens["refresh_token"].rpartition("_")
        forged = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": f"{prefix}_{'A' * len(mac)}"})
        assert forged.status_code == 401
        assert forged.json()["type"] == "urn:taylordash:problem:invalid-token"
        session_id, generation, _ = tokens["refresh_token"][4:].split("_", 2)
        ahead = f"tdr_{session_id}_{int(generation) + 1}_{mac}"
        assert (await env.client.post("/api/v1/auth/refresh", json={"refresh_token": ahead})).status_code == 401
        # the genuine one still works: forgeries do not count as reuse
        assert (
            await env.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 200


async def test_tokens_of_deleted_and_disabled_users_are_refused(auth_app):
    async with auth_app() as env:
        gone = await env.user("frank", "viewer")
        tokens = await env.login("frank")
        api = await env.client.post(
            "/api/v1/auth/tokens", json={"name": "ci", "user_id": str(gone.id)}, headers=env.admin
        )
        assert api.status_code == 201, api.text
        api_headers = bearer(api.json()["token"])
        assert (await env.client.get("/api/v1/auth/me", headers=api_headers)).status_code == 200
        deleted = await env.client.delete(f"/api/v1/users/{gone.id}", headers=env.admin)
        assert deleted.status_code == 204, deleted.text
        for headers in (bearer(tokens["access_token"]), api_headers):
            assert (await env.client.get("/api/v1/auth/me", headers=headers)).status_code == 401
        refresh = await env.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401
        relogin = await env.client.post("/api/v1/auth/login", json={"username": "frank", "password": PASSWORD})
        assert relogin.status_code == 401


async def test_password_change_by_its_owner(auth_app):
    async with auth_app(users=False) as env:
        await env.user("gina", "viewer")
        old = await env.login("gina")
        url = "/api/v1/auth/password"
        base = {"username": "gina", "current_password": PASSWORD}
        too_short = await env.client.post(url, json={**base, "new_password": "short"})
        assert too_short.status_code == 422
        assert too_short.json()["errors"][0]["loc"] == ["new_password"]
        same_as_name = await env.client.post(url, json={**base, "new_password": "GINA"})
        assert same_as_name.status_code == 422
        wrong = await env.client.post(
            url, json={**base, "current_password": "not my password", "new_password": "x" * 20}
        )
        assert wrong.status_code == 401
        unchanged = await env.client.post(url, json={**base, "new_password": PASSWORD})
        assert unchanged.status_code == 400
        changed = await env.client.post(url, json={**base, "new_password": "a much better passphrase"})
        assert changed.status_code == 204, changed.text
        assert (await env.client.get("/api/v1/auth/me", headers=bearer(old["access_token"]))).status_code == 401
        assert (
            await env.client.post("/api/v1/auth/login", json={"username": "gina", "password": PASSWORD})
        ).status_code == 401
        await env.login("gina", "a much better passphrase")


async def test_password_policy_on_user_creation(auth_app):
    async with auth_app() as env:
        for password in ("eleven char", "Mallory-Long", "m" * 1025):
            response = await env.client.post(
                "/api/v1/users",
                json={"username": "mallory-long", "password": password, "role": "viewer"},
                headers=env.admin,
            )
            assert response.status_code == 422, (password, response.text)
