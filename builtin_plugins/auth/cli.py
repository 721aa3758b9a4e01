"""``taylordash users …`` and ``taylordash tokens …``: bootstrap the first admin, manage accounts offline.

Changes are written to the database; running servers apply them at once for new credentials and within
``cache_seconds`` for credentials they have cached.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.config import AuthSettings
from kernel.errors import ProblemError

T = TypeVar("T")
ROLE = click.Choice(["admin", "viewer"])


def _fail(problem: ProblemError) -> click.ClickException:
    lines = [problem.detail or problem.title]
    lines += [f"  {'.'.join(e.get('loc', []))}: {e.get('msg')}" for e in problem.extra.get("errors", [])]
    error = click.ClickException("\n".join(lines))
    error.exit_code = 2 if problem.status in (400, 409, 422) else 1
    return error


def run(action: Callable[[Any, Actor], Awaitable[T]]) -> T:
    """Run ``action(auth_service, cli_actor)`` against the configured database, then dispose of it."""
    from builtin_plugins.auth.service import AuthService
    from kernel.app import Kernel
    from kernel.settings import load_settings

    async def main() -> T:
        settings = load_settings()
        kernel = Kernel(settings)
        try:
            await kernel.prepare_schema()
            auth = AuthService(kernel, AuthSettings.model_validate(settings.plugin_settings("auth")))
            return await action(auth, Actor("cli", name=getpass.getuser()[:150], role="admin"))
        finally:
            await kernel.db.dispose()

    try:
        return asyncio.run(main())
    except ProblemError as problem:
        raise _fail(problem) from None


async def _audit(auth: Any, actor: Actor, action: str, target_id: str, **details: Any) -> None:
    await auth.audit.record(auth.audit.entry(action, "success", actor, target_id=target_id, details=details))


async def _user(auth: Any, username: str) -> Any:
    user = await auth.users.by_username(username.strip().casefold())
    if user is None or user.deleted_at is not None:
        raise click.ClickException(f"no user named {username!r}")
    return user


@click.group()
def users() -> None:
    """Create and manage user accounts (run `users create NAME --role admin` for the first admin)."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, required=True, help="admin: read and write; viewer: read only")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin")
@click.option("--display-name", default="", help="Shown instead of the username")
def users_create(username: str, role: str, password_stdin: bool, display_name: str) -> None:
    """Create USERNAME with a password (prompted unless --password-stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def create(auth: Any, actor: Actor) -> Any:
        user = await auth.users.create(username, password, role, actor, display_name=display_name)
        await _audit(auth, actor, "users.create", str(user.id), username=user.username, role=role)
        return user

    user = run(create)
    click.echo(f"created {user.role} {user.username} ({user.id})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
@click.option("--all", "include_deleted", is_flag=True, help="Include deleted users")
def users_list(as_json: bool, include_deleted: bool) -> None:
    """List users by username."""

    async def collect(auth: Any, actor: Actor) -> list[Any]:
        found: list[Any] = []
        cursor = None
        while True:
            rows, cursor = await auth.users.search(limit=500, cursor=cursor, include_deleted=include_deleted)
            found.extend(rows)
            if cursor is None:
                return found

    rows = run(collect)
    if as_json:
        keys = ("id", "username", "role", "active", "display_name", "created_at", "last_login_at", "deleted_at")
        click.echo(json.dumps([{k: getattr(u, k) for k in keys} for u in rows], default=str, indent=2))
        return
    for user in rows:
        state = "deleted" if user.deleted_at else "active" if user.active else "disabled"
        click.echo(f"{user.username:<24} {user.role:<7} {state:<9} {user.id}")


def _update(username: str, action: str, **changes: Any) -> None:
    async def apply(auth: Any, actor: Actor) -> dict[str, Any]:
        user = await _user(auth, username)
        _, changed = await auth.users.update(user.id, actor, **changes)
        await _audit(auth, actor, action, str(user.id), changes={k: [str(a), str(b)] for k, (a, b) in changed.items()})
        return changed

    changed = run(apply)
    click.echo(f"{username}: " + (", ".join(f"{k} {a} → {b}" for k, (a, b) in changed.items()) or "unchanged"))


@users.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
def users_set_role(username: str, role: str) -> None:
    """Give USERNAME the role ROLE."""
    _update(username, "users.role_change", role=role)


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable USERNAME: its sessions end and it can no longer log in."""
    _update(username, "users.update", active=False)


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable USERNAME again."""
    _update(username, "users.update", active=True)


@click.group()
def tokens() -> None:
    """Create and revoke API tokens (Authorization: Bearer td_…)."""


@tokens.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for")
@click.option("--role", type=ROLE, help="Default: the user's role (a token never exceeds it)")
@click.option("--days", type=click.IntRange(1, 3650), help="Lifetime in days")
def tokens_create(username: str, name: str, role: str | None, days: int | None) -> None:
    """Create an API token for USERNAME and print it (it is shown only this once)."""

    async def create(auth: Any, actor: Actor) -> tuple[Any, str]:
        user = await _user(auth, username)
        row, secret = await auth.api_tokens.create(user.id, name, actor, role=role, days=days, actor_is_admin=True)
        await _audit(auth, actor, "auth.token_create", str(user.id), token_id=str(row.id), role=row.role, name=name)
        return row, secret

    row, secret = run(create)
    click.echo(f"token {row.id} ({row.role}, expires {row.expires_at:%Y-%m-%d}); store it now:", err=True)
    click.echo(secret)


@tokens.command("revoke")
@click.argument("token")
def tokens_revoke(token: str) -> None:
    """Revoke TOKEN (its id, or its prefix as shown by the API, e.g. td_AbC123)."""

    async def revoke(auth: Any, actor: Actor) -> Any:
        row = await auth.api_tokens.by_prefix_or_id(token)
        await auth.api_tokens.revoke(row.id, actor, actor_is_admin=True)
        await _audit(auth, actor, "auth.token_revoke", str(row.user_id), token_id=str(row.id))
        return row

    row = run(revoke)
    click.echo(f"revoked token {row.id}")


COMMANDS = [users, tokens]
