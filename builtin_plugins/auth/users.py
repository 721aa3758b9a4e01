"""User administration: create, list, change role or state, reset passwords, soft-delete."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from builtin_plugins.auth import pagination
from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.models import ApiToken, User, UserSession, utcnow
from builtin_plugins.auth.passwords import check_policy
from kernel.security import ROLES
from sdk import Conflict, NotFound, ValidationFailed

if TYPE_CHECKING:
    from builtin_plugins.auth.service import AuthService

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,149}$")


def valid_username(username: str) -> str:
    """``username`` normalized (trimmed, case-folded), or a 422 problem."""
    name = username.strip().casefold()
    if not USERNAME.match(name):
        raise ValidationFailed(
            "invalid username",
            errors=[
                {
                    "loc": ["username"],
                    "msg": "1-150 characters: letters, digits and . _ @ + - (starting with a letter or digit)",
                    "type": "username",
                }
            ],
        )
    return name


class UserAdmin:
    """Operations on ``users`` used by the admin API and the CLI."""

    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.db = auth.db

    async def by_username(self, username: str) -> User | None:
        async with self.db.session() as session:
            return (await session.exec(select(User).where(User.username == username))).first()

    async def get(self, user_id: uuid.UUID, *, include_deleted: bool = True) -> User:
        async with self.db.session() as session:
            user = await session.get(User, user_id)
        if user is None or (user.deleted_at is not None and not include_deleted):
            raise NotFound("no such user")
        return user

    async def create(
        self,
        username: str,
        password: str | None,
        role: str,
        actor: Actor,
        display_name: str = "",
        oidc_subject: str | None = None,
    ) -> User:
        """A new active user. ``password=None`` makes an account that can only sign in through OIDC."""
        name = valid_username(username)
        if role not in ROLES:
            raise ValidationFailed(f"unknown role {role!r}", errors=[{"loc": ["role"], "msg": "unknown role"}])
        if password is not None:
            check_policy(password, name, self.auth.settings.password_min_length)
        existing = await self.by_username(name)
        if existing is not None:
            what = "a deleted user" if existing.deleted_at is not None else "another user"
            raise Conflict(f"the username {name!r} belongs to {what}", slug="username-taken")
        now = utcnow()
        user = User(
            username=name,
            display_name=display_name[:200],
            password_hash=await self.auth.passwords.hash(password) if password is not None else None,
            role=role,
            oidc_subject=oidc_subject,
            created_at=now,
            updated_at=now,
            password_changed_at=now if password is not None else None,
        )
        async with self.db.session() as session:
            session.add(user)
            await self.auth.emit(session, "user_created", str(user.id), actor, {"username": name, "role": role})
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict(f"the username {name!r} belongs to another user", slug="username-taken") from None
        return user

    async def search(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        role: str | None = None,
        active: bool | None = None,
        q: str | None = None,
        include_deleted: bool = False,
    ) -> tuple[list[User], str | None]:
        """Users by username, filtered; and the cursor of the next page."""
        query = select(User)
        if not include_deleted:
            query = query.where(col(User.deleted_at).is_(None))
        if role is not None:
            query = query.where(User.role == role)
        if active is not None:
            query = query.where(User.active == active)
        if q:
            escaped = q.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(col(User.username).like(f"%{escaped}%", escape="\\"))
        if cursor is not None:
            query = query.where(col(User.username) > pagination.decode(cursor, 1)[0])
        query = query.order_by(col(User.username)).limit(limit + 1)
        async with self.db.session() as session:
            rows, more = pagination.page(list((await session.exec(query)).all()), limit)
        return rows, pagination.encode([rows[-1].username]) if more and rows else None

    async def _other_admins(self, user_id: uuid.UUID) -> int:
        async with self.db.session() as session:
            query = select(sa.func.count()).select_from(User)
            query = query.where(
                User.role == "admin", col(User.active).is_(True), col(User.deleted_at).is_(None), User.id != user_id
            )
            return int((await session.exec(query)).one())

    async def update(self, user_id: uuid.UUID, actor: Actor, **changes: Any) -> tuple[User, dict[str, Any]]:
        """Change ``role``, ``active`` or ``display_name``. Returns the user and what changed
        (``{field: [old, new]}``). Refuses to leave the deployment without an active admin."""
        user = await self.get(user_id, include_deleted=False)
        changed = {k: [getattr(user, k), v] for k, v in changes.items() if v is not None and getattr(user, k) != v}
        if not changed:
            return user, {}
        if "role" in changed and changed["role"][1] not in ROLES:
            raise ValidationFailed("unknown role", errors=[{"loc": ["role"], "msg": "unknown role"}])
        demoted = changed.get("role", [None, "admin"])[1] != "admin" or changed.get("active", [None, True])[1] is False
        if user.role == "admin" and user.active and demoted and not await self._other_admins(user.id):
            raise Conflict("this is the last active admin", slug="last-admin")
        async with self.db.session() as session:
            row = await session.get(User, user_id)
            assert row is not None
            for key, (_old, new) in changed.items():
                setattr(row, key, new)
            row.updated_at = utcnow()
            session.add(row)
            await self.auth.emit(session, "user_updated", str(user_id), actor, {"changes": changed})
            await session.commit()
        if changed.get("active", [None, True])[1] is False:
            await self.auth.revoke_user_sessions(user_id, "user-disabled", actor)
        elif "role" in changed:
            await self.auth.revocations.announce(users=[str(user_id)])
        return row, changed

    async def store_password(self, user_id: uuid.UUID, password_hash: str) -> None:
        async with self.db.session() as session:
            await session.exec(
                sa.update(User)
                .where(col(User.id) == user_id)
                .values(password_hash=password_hash, password_changed_at=utcnow(), updated_at=utcnow())
            )
            await session.commit()

    async def reset_password(self, user_id: uuid.UUID, password: str, actor: Actor) -> None:
        """An admin sets a user's password; the user's sessions end."""
        user = await self.get(user_id, include_deleted=False)
        check_policy(password, user.username, self.auth.settings.password_min_length, "new_password")
        await self.store_password(user.id, await self.auth.passwords.hash(password))
        await self.auth.revoke_user_sessions(user.id, "password-reset", actor)

    async def delete(self, user_id: uuid.UUID, actor: Actor) -> User:
        """Soft-delete: the row stays (the audit log refers to it); sessions and API tokens end."""
        user = await self.get(user_id, include_deleted=False)
        if user.role == "admin" and user.active and not await self._other_admins(user.id):
            raise Conflict("this is the last active admin", slug="last-admin")
        now = utcnow()
        async with self.db.session() as session:
            await session.exec(
                sa.update(User).where(col(User.id) == user_id).values(deleted_at=now, active=False, updated_at=now)
            )
            await session.exec(
                sa.update(ApiToken)
                .where(col(ApiToken.user_id) == user_id, col(ApiToken.revoked_at).is_(None))
                .values(revoked_at=now)
            )
            await self.auth.emit(session, "user_deleted", str(user_id), actor, {"username": user.username})
            await session.commit()
        await self.auth.revoke_user_sessions(user_id, "user-deleted", actor)
        return user

    async def sessions(
        self, user_id: uuid.UUID, *, limit: int, cursor: str | None = None, active_only: bool = False
    ) -> tuple[list[UserSession], str | None]:
        """A user's sessions, newest first."""
        query = select(UserSession).where(UserSession.user_id == user_id)
        if active_only:
            query = query.where(col(UserSession.revoked_at).is_(None), col(UserSession.expires_at) > utcnow())
        if cursor is not None:
            query = query.where(pagination.newest_first_after(cursor, UserSession.created_at, UserSession.id))
        query = query.order_by(col(UserSession.created_at).desc(), col(UserSession.id).desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows, more = pagination.page(list((await session.exec(query)).all()), limit)
        last = rows[-1] if more and rows else None
        return rows, pagination.newest_first_cursor(last.created_at, last.id) if last else None

    async def revoke_session(self, user_id: uuid.UUID, session_id: uuid.UUID, actor: Actor) -> None:
        async with self.db.session() as session:
            row = await session.get(UserSession, session_id)
        if row is None or row.user_id != user_id:
            raise NotFound("no such session")
        await self.auth.revoke_sessions([session_id], "revoked-by-admin", actor)
