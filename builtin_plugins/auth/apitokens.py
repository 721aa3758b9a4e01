"""API tokens for automation: shown once, stored as SHA-256, scoped to a role, expiring, revocable."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlmodel import col, select

from builtin_plugins.auth import pagination
from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.authn import ROLE_RANK
from builtin_plugins.auth.models import ApiToken, User, utcnow
from builtin_plugins.auth.tokens import new_api_token
from sdk import Forbidden, NotFound, ValidationFailed

if TYPE_CHECKING:
    from builtin_plugins.auth.service import AuthService


class ApiTokens:
    """Create, list and revoke API tokens."""

    def __init__(self, auth: AuthService) -> None:
        self.auth = auth
        self.db = auth.db

    async def create(
        self,
        owner_id: uuid.UUID,
        name: str,
        actor: Actor,
        *,
        role: str | None = None,
        days: int | None = None,
        actor_is_admin: bool,
    ) -> tuple[ApiToken, str]:
        """A token for ``owner_id`` (the actor themself, or anyone when the actor administers users).
        Its role defaults to the owner's and can exceed neither the owner's nor the actor's."""
        settings = self.auth.settings
        if str(owner_id) != actor.id and not actor_is_admin:
            raise Forbidden("only an admin creates tokens for other users")
        async with self.db.session() as session:
            owner = await session.get(User, owner_id)
        if owner is None or owner.deleted_at is not None:
            raise NotFound("no such user")
        if not owner.active:
            raise ValidationFailed("the user is disabled", errors=[{"loc": ["user_id"], "msg": "user is disabled"}])
        role = role or owner.role
        ceiling = min(ROLE_RANK[owner.role], ROLE_RANK.get(actor.role or "", 0) if actor.kind != "cli" else 99)
        if ROLE_RANK.get(role, 99) > ceiling:
            raise Forbidden(f"a token cannot have the role {role!r}: it exceeds its owner's or its creator's")
        days = days or settings.api_token_default_days
        if days > settings.api_token_max_days:
            raise ValidationFailed(
                "token lifetime too long",
                errors=[{"loc": ["expires_in_days"], "msg": f"at most {settings.api_token_max_days} days"}],
            )
        token, digest, prefix = new_api_token()
        now = utcnow()
        row = ApiToken(
            user_id=owner_id,
            name=name[:100],
            role=role,
            token_hash=digest,
            prefix=prefix,
            created_by=uuid.UUID(actor.id) if actor.kind in ("user", "token") and actor.id else None,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        async with self.db.session() as session:
            session.add(row)
            payload = {"token_id": str(row.id), "role": role, "name": row.name}
            await self.auth.emit(session, "token_created", str(owner_id), actor, payload)
            await session.commit()
        return row, token

    async def search(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        user_id: uuid.UUID | None = None,
        include_revoked: bool = False,
    ) -> tuple[list[ApiToken], str | None]:
        """Tokens newest first (of one user when ``user_id`` is given)."""
        query = select(ApiToken)
        if user_id is not None:
            query = query.where(ApiToken.user_id == user_id)
        if not include_revoked:
            query = query.where(col(ApiToken.revoked_at).is_(None))
        if cursor is not None:
            query = query.where(pagination.newest_first_after(cursor, ApiToken.created_at, ApiToken.id))
        query = query.order_by(col(ApiToken.created_at).desc(), col(ApiToken.id).desc()).limit(limit + 1)
        async with self.db.session() as session:
            rows, more = pagination.page(list((await session.exec(query)).all()), limit)
        last = rows[-1] if more and rows else None
        return rows, pagination.newest_first_cursor(last.created_at, last.id) if last else None

    async def revoke(self, token_id: uuid.UUID, actor: Actor, *, actor_is_admin: bool) -> ApiToken:
        """Revoke a token now on every instance (its owner or an admin may)."""
        async with self.db.session() as session:
            row = await session.get(ApiToken, token_id)
            if row is None or (str(row.user_id) != actor.id and not actor_is_admin):
                raise NotFound("no such token")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.add(row)
                await self.auth.emit(session, "token_revoked", str(row.user_id), actor, {"token_id": str(token_id)})
                await session.commit()
        await self.auth.revocations.announce(tokens=[str(token_id)])
        return row

    async def by_prefix_or_id(self, ident: str) -> ApiToken:
        """A token named by its id or its display prefix (``td_abc123``), for the CLI."""
        async with self.db.session() as session:
            try:
                row = await session.get(ApiToken, uuid.UUID(ident))
            except ValueError:
                rows = list((await session.exec(select(ApiToken).where(ApiToken.prefix == ident))).all())
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise NotFound(f"no single token matches {ident!r}")
        return row
