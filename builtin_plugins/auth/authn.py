"""Request authentication: the per-request path and the per-instance caches it runs on.

A request with an access JWT costs a dictionary lookup for the verified token and one for its session;
the database is asked only when an instance has not seen the session (or API token) for
``cache_seconds``. Revocations evict cache entries on every instance (see ``revocation``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from builtin_plugins.auth.models import ApiToken, User, UserSession, utcnow
from builtin_plugins.auth.tokens import API_TOKEN_PREFIX, AccessTokens, InvalidToken, looks_like_jwt, sha256_hex
from kernel.db import Database
from sdk import Principal, Unauthorized

ROLE_RANK = {"viewer": 0, "admin": 1}

_SESSION_QUERY = (
    sa.select(
        UserSession.user_id,
        UserSession.expires_at,
        UserSession.revoked_at,
        User.username,
        User.role,
        User.active,
        User.deleted_at,
    )
    .join(User, User.id == UserSession.user_id)  # type: ignore[arg-type]
    .where(UserSession.id == sa.bindparam("id"))
)
_TOKEN_QUERY = (
    sa.select(
        ApiToken.id,
        ApiToken.user_id,
        ApiToken.role,
        ApiToken.name,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        User.username,
        User.role.label("user_role"),  # type: ignore[attr-defined]
        User.active,
        User.deleted_at,
    )
    .join(User, User.id == ApiToken.user_id)  # type: ignore[arg-type]
    .where(ApiToken.token_hash == sa.bindparam("hash"))
)


def lesser_role(a: str, b: str) -> str:
    return a if ROLE_RANK.get(a, -1) <= ROLE_RANK.get(b, -1) else b


def unauthorized(detail: str) -> Unauthorized:
    return Unauthorized(detail, slug="invalid-token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass(slots=True)
class Entry:
    """A cached answer: the principal (``None`` when refused), whose user it is, and until when."""

    principal: Principal | None
    user_id: str
    fresh_until: float
    expires_at: float


class Authenticator:
    """Turns a bearer credential into a :class:`Principal`, or refuses it."""

    def __init__(self, db: Database, access: AccessTokens, cache_seconds: float, max_entries: int) -> None:
        self.db = db
        self.access = access
        self.ttl = cache_seconds
        self.max_entries = max_entries
        self.sessions: dict[str, Entry] = {}
        self.tokens: dict[str, Entry] = {}
        # Bumped by every eviction: an answer read from the database before an eviction may predate
        # the revocation that caused it, so it is used once but not cached.
        self.generation = 0

    # -- the per-request path --------------------------------------------------------------------
    def authenticate(self, credential: str) -> Principal | Awaitable[Principal] | None:
        """The principal, or an awaitable of it when the database must be asked; ``None`` when the
        credential is not one of ours. Raises ``Unauthorized`` for a bad credential."""
        if credential.startswith(API_TOKEN_PREFIX):
            digest = sha256_hex(credential)
            entry = self.tokens.get(digest)
            if entry is not None and entry.fresh_until > time.monotonic():
                return self._accept(entry, None)
            return self._load_token(digest)
        if not looks_like_jwt(credential):
            return None
        try:
            claims = self.access.verify(credential)
        except InvalidToken as exc:
            raise unauthorized(str(exc)) from None
        entry = self.sessions.get(claims.session_id)
        if entry is not None and entry.fresh_until > time.monotonic():
            return self._accept(entry, claims.user_id)
        return self._load_session(claims.session_id, claims.user_id)

    @staticmethod
    def _accept(entry: Entry, user_id: str | None) -> Principal:
        principal = entry.principal
        if principal is None or (user_id is not None and entry.user_id != user_id):
            raise unauthorized("the credential has been revoked")
        if entry.expires_at <= time.time():
            raise unauthorized("the credential has expired")
        return principal

    def _remember(self, cache: dict[str, Entry], key: str, entry: Entry, generation: int) -> Entry:
        if generation != self.generation:
            return entry
        if len(cache) >= self.max_entries:
            cache.clear()
        cache[key] = entry
        return entry

    async def _load_session(self, session_id: str, user_id: str) -> Principal:
        try:
            sid = uuid.UUID(session_id)
        except ValueError:
            raise unauthorized("malformed session id") from None
        generation = self.generation
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(_SESSION_QUERY, {"id": sid})).first()
        fresh_until = time.monotonic() + self.ttl
        if row is None:
            raise unauthorized("unknown session")
        usable = row.revoked_at is None and row.active and row.deleted_at is None
        principal = (
            Principal(id=str(row.user_id), role=row.role, name=row.username, kind="user", session_id=session_id)
            if usable
            else None
        )
        entry = Entry(principal, str(row.user_id), fresh_until, row.expires_at.timestamp())
        return self._accept(self._remember(self.sessions, session_id, entry, generation), user_id)

    async def _load_token(self, digest: str) -> Principal:
        generation = self.generation
        async with self.db.engine.begin() as conn:
            row = (await conn.execute(_TOKEN_QUERY, {"hash": digest})).first()
            if row is not None and row.revoked_at is None:
                await conn.execute(
                    sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=utcnow())  # type: ignore[arg-type]
                )
        fresh_until = time.monotonic() + self.ttl
        if row is None:
            entry = Entry(None, "", fresh_until, float("inf"))
        else:
            usable = row.revoked_at is None and row.active and row.deleted_at is None
            principal = Principal(
                id=str(row.user_id),
                role=lesser_role(row.role, row.user_role),
                name=row.username,
                kind="token",
                extra={"token_id": str(row.id), "token_name": row.name},
            )
            entry = Entry(principal if usable else None, str(row.user_id), fresh_until, row.expires_at.timestamp())
        return self._accept(self._remember(self.tokens, digest, entry, generation), None)

    # -- invalidation ----------------------------------------------------------------------------
    def evict(self, sessions: Iterable[str] = (), users: Iterable[str] = (), tokens: Iterable[str] = ()) -> None:
        """Forget cached sessions, every entry of ``users``, and API tokens by id."""
        self.generation += 1
        for session_id in sessions:
            self.sessions.pop(session_id, None)
        users = set(users)
        tokens = set(tokens)
        if users:
            for key in [k for k, e in self.sessions.items() if e.user_id in users]:
                self.sessions.pop(key, None)
        if users or tokens:
            for key, entry in list(self.tokens.items()):
                token_id = entry.principal.extra.get("token_id") if entry.principal is not None else None
                if entry.user_id in users or token_id in tokens:
                    self.tokens.pop(key, None)
