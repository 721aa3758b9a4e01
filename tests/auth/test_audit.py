"""The audit log: auth events, admin actions and every mutating request of any plugin; the audit API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from kernel.db import Database
from sdk import RequestContext, Route, hookimpl
from tests.auth.conftest import PASSWORD, bearer


class NotesPlugin:
    """Some other plugin with a write route."""

    @hookimpl
    def register_permissions(self) -> dict[str, list[str]]:
        return {"notes:write": ["admin"]}

    @hookimpl
    def register_routes(self) -> list[Route]:
        async def create(ctx: RequestContext) -> dict[str, str]:
            return {"id": "n1"}

        async def crash(ctx: RequestContext) -> None:
            raise RuntimeError("boom")

        return [
            Route("/api/v1/notes", create, methods=("POST",), permission="notes:write", status_code=201),
            Route("/api/v1/notes/crash", crash, methods=("POST",), permission="notes:write"),
        ]


async def entries(env, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    response = await env.client.get(f"/api/v1/audit?limit=500&{query}", headers=env.admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_auth_events_and_admin_actions_are_audited(auth_app):
    async with auth_app(plugins=[("notes", NotesPlugin())]) as env:
        user = await env.user("kim", "viewer")
        await env.client.post("/api/v1/auth/login", json={"username": "kim", "password": "wrong password"})
        tokens = await env.login("kim")
        refreshed = (
            await env.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        ).json()
        await env.client.post("/api/v1/auth/logout", headers=bearer(refreshed["access_token"]))
        made = (await env.client.post("/api/v1/auth/tokens", json={"name": "bot"}, headers=env.admin)).json()
        await env.client.delete(f"/api/v1/auth/tokens/{made['id']}", headers=env.admin)
        await env.client.patch(f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=env.admin)
        await env.client.post(
            "/api/v1/auth/password",
            json={"username": "kim", "current_password": PASSWORD, "new_password": "kim's new passphrase"},
        )
        await env.client.post(
            f"/api/v1/users/{user.id}/password", json={"new_password": PASSWORD + "!"}, headers=env.admin
        )
        await env.client.post("/api/v1/notes", json={}, headers=env.admin)
        await env.client.post("/api/v1/notes", json={}, headers={"user-agent": "curl/8", "x-request-id": "req-anon"})
        await env.client.post("/api/v1/notes", json={}, headers=env.viewer)
        crash = await env.client.post("/api/v1/notes/crash", json={}, headers=env.admin)
        assert crash.status_code == 500

        log = await entries(env)
        by_action: dict[str, list[dict]] = {}
        for entry in log:
            by_action.setdefault(entry["action"], []).append(entry)
        logins = [e for e in by_action["auth.login"] if e["details"].get("username") == "kim"]
        assert {e["outcome"] for e in logins} == {"success", "denied"}
        success = next(e for e in logins if e["outcome"] == "success")
        assert success["actor_id"] == str(user.id) and success["ip"] == "127.0.0.1" and success["status"] == 200
        failure = next(e for e in logins if e["outcome"] == "denied")
        assert failure["actor_kind"] == "anonymous" and failure["status"] == 401
        assert by_action["auth.refresh"][0]["actor_id"] == str(user.id)
        assert by_action["auth.logout"][0]["outcome"] == "success"
        assert by_action["auth.token_create"][0]["details"]["token_id"] == made["id"]
        assert by_action["auth.token_revoke"][0]["details"]["token_id"] == made["id"]
        role_change = by_action["users.role_change"][0]
        assert role_change["target_id"] == str(user.id) and role_change["details"]["changes"]["role"] == [
            "viewer",
            "admin",
        ]
        assert by_action["auth.password_change"][0]["outcome"] == "success"
        assert by_action["users.password_reset"][0]["target_id"] == str(user.id)

        notes = by_action["http.request"]
        by_outcome = {(e["path"], e["outcome"]): e for e in notes}
        created = by_outcome[("/api/v1/notes", "success")]
        assert created["method"] == "POST" and created["status"] == 201 and created["actor_role"] == "admin"
        anonymous = next(e for e in notes if e["actor_kind"] == "anonymous")
        assert anonymous["status"] == 401 and anonymous["user_agent"] == "curl/8"
        assert anonymous["request_id"] == "req-anon"
        assert any(e["actor_role"] == "viewer" and e["status"] == 403 for e in notes)
        assert by_outcome[("/api/v1/notes/crash", "error")]["status"] == 500


async def test_audit_filters_and_pages(auth_app):
    async with auth_app() as env:
        for _ in range(3):
            await env.client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong password"})
        denied = await entries(env, action="auth.login", outcome="denied")
        assert len(denied) == 3
        assert len(await entries(env, ip="127.0.0.1", action="auth.login")) >= 5
        admin_id = (await env.client.get("/api/v1/auth/me", headers=env.admin)).json()["id"]
        assert all(e["actor_id"] == admin_id for e in await entries(env, actor_id=admin_id))
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
        assert await entries(env, since=future) == []
        assert len(await entries(env, until=future, action="auth.login", outcome="denied")) == 3

        seen, cursor = [], None
        while True:
            query = "?limit=2&action=auth.login" + (f"&cursor={cursor}" if cursor else "")
            page = (await env.client.get("/api/v1/audit" + query, headers=env.admin)).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 5 and len({e["id"] for e in seen}) == 5
        stamps = [e["occurred_at"] for e in seen]
        assert stamps == sorted(stamps, reverse=True)

        naive = await env.client.get("/api/v1/audit?since=2024-01-01T00:00:00", headers=env.admin)
        assert naive.status_code == 422
        assert (await env.client.get("/api/v1/audit?cursor=%%%", headers=env.admin)).status_code == 400
        assert (await env.client.get("/api/v1/audit?outcome=maybe", headers=env.admin)).status_code == 422
        assert (await env.client.get("/api/v1/audit", headers=env.viewer)).status_code == 403


async def test_auth_events_are_published_with_their_changes(auth_app):
    async with auth_app() as env:
        published = []
        publish = env.kernel.publish

        async def recording(session, event):
            published.append(event)
            await publish(session, event)

        env.kernel.publish = recording
        user = await env.user("olga", "viewer")
        tokens = await env.login("olga")
        await env.client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
        made = (await env.client.post("/api/v1/auth/tokens", json={"name": "bot"}, headers=env.admin)).json()
        await env.client.delete(f"/api/v1/auth/tokens/{made['id']}", headers=env.admin)
        await env.client.patch(f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=env.admin)
    topics = {event.topic for event in published}
    for action in ("user_created", "login", "logout", "token_created", "token_revoked", "user_updated"):
        assert f"tracker/events/auth/{action}" in topics, action
    logout = next(event for event in published if event.type == "auth.logout")
    assert logout.source == "auth" and logout.subject_id == str(user.id)
    assert logout.actor is not None and (logout.actor.id, logout.actor.role) == (str(user.id), "viewer")
    assert logout.payload["reason"] == "logout"


async def test_request_rows_are_written_in_batches_and_none_is_lost(auth_app, settings):
    """Mutating requests queue their rows for the background writer: a burst of concurrent writes
    is readable through the API at once and every row is in the table once the app has stopped."""
    async with auth_app(plugins=[("notes", NotesPlugin())]) as env:
        auth = env.app.kernel.services["auth"]
        burst = await asyncio.gather(
            *(
                env.client.post("/api/v1/notes", json={}, headers={**env.admin, "x-request-id": f"burst-{i}"})
                for i in range(60)
            )
        )
        assert {r.status_code for r in burst} == {201}
        seen = {e["request_id"] for e in await entries(env, action="http.request") if e["path"] == "/api/v1/notes"}
        assert seen == {f"burst-{i}" for i in range(60)}
        more = await asyncio.gather(
            *(
                env.client.post("/api/v1/notes", json={}, headers={**env.admin, "x-request-id": f"late-{i}"})
                for i in range(25)
            )
        )
        assert {r.status_code for r in more} == {201}
        assert auth.audit._writer is not None and not auth.audit._writer.done()
    db = Database(settings)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT request_id FROM auth_audit_log WHERE path = '/api/v1/notes'"))
            stored = [r[0] for r in rows]
    finally:
        await db.dispose()
    assert sorted(stored) == sorted([f"burst-{i}" for i in range(60)] + [f"late-{i}" for i in range(25)])
