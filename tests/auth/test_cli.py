"""``taylordash users …`` and ``taylordash tokens …`` (the real command line, run in-process)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from kernel.cli import cli
from tests.auth.conftest import TEST_SECRET, bearer


def test_bootstrap_an_admin_and_manage_accounts(auth_app, tmp_path: Path, database_url: str):
    runner = CliRunner(
        env={
            "TD_DATA_DIR": str(tmp_path / "data"),
            "TD_DATABASE_URL": database_url,
            "TD_SECRET_KEY": TEST_SECRET,
            "TD_LOG_LEVEL": "warning",
            "TD_MIGRATE_ON_START": "true",
            "TD_PLUGINS__AUTH__ARGON2_TIME_COST": "1",
            "TD_PLUGINS__AUTH__ARGON2_MEMORY_KIB": "64",
            "TD_PLUGINS__AUTH__ARGON2_PARALLELISM": "1",
        }
    )

    def run(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input)

    first = run("users", "create", "Root", "--role", "admin", "--password-stdin", input="root password 123\n")
    assert first.exit_code == 0, first.output
    assert "created admin root" in first.stdout
    weak = run("users", "create", "bob", "--role", "viewer", "--password-stdin", input="bob\n")
    assert weak.exit_code == 2 and "at least 12 characters" in weak.stderr and "not equal the username" in weak.stderr
    prompted = run("users", "create", "bob", "--role", "viewer", input="bobs password 42\nbobs password 42\n")
    assert prompted.exit_code == 0, prompted.output
    taken = run("users", "create", "BOB", "--role", "viewer", "--password-stdin", input="x" * 20 + "\n")
    assert taken.exit_code == 2 and "belongs to another user" in taken.stderr
    promoted = run("users", "set-role", "bob", "admin")
    assert promoted.exit_code == 0 and "role viewer → admin" in promoted.stdout
    token = run("tokens", "create", "bob", "--name", "ci", "--days", "7")
    assert token.exit_code == 0, token.output
    secret = token.stdout.strip()
    assert secret.startswith("td_") and "store it now" in token.stderr
    disabled = run("users", "disable", "bob")
    assert disabled.exit_code == 0 and "active True → False" in disabled.stdout
    listed = json.loads(run("users", "list", "--json").stdout)
    assert {(u["username"], u["role"], u["active"]) for u in listed} == {
        ("root", "admin", True),
        ("bob", "admin", False),
    }
    assert run("users", "disable", "nobody").exit_code == 1
    assert run("users", "set-role", "bob", "owner").exit_code == 2

    async def check_with_the_server() -> list[dict]:
        async with auth_app(users=False, cache_seconds=0) as app:
            tokens = await app.login("root", "root password 123")
            root = bearer(tokens["access_token"])
            assert (await app.client.get("/api/v1/auth/me", headers=bearer(secret))).status_code == 401  # disabled
            assert (await asyncio.to_thread(run, "users", "enable", "bob")).exit_code == 0
            assert (await app.client.get("/api/v1/auth/me", headers=bearer(secret))).status_code == 200
            revoked = await asyncio.to_thread(run, "tokens", "revoke", secret[:9])
            assert revoked.exit_code == 0, revoked.output
            assert (await app.client.get("/api/v1/auth/me", headers=bearer(secret))).status_code == 401
            return (await app.client.get("/api/v1/audit?limit=500", headers=root)).json()["items"]

    audit = asyncio.run(check_with_the_server())
    by_cli = {e["action"] for e in audit if e["actor_kind"] == "cli"}
    assert {"users.create", "users.role_change", "users.update", "auth.token_create", "auth.token_revoke"} <= by_cli
