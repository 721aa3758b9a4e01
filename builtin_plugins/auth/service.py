"""Sessions: password login, rotating refresh, logout and revocation. Composes the auth plugin's parts."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request

from builtin_plugins.auth.apitokens import ApiTokens
from builtin_plugins.auth.audit import Actor, AuditLog, AuditNote, Origin
from builtin_plugins.auth.authn import Authenticator
from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.models import User, UserSession, utcnow
from builtin_plugins.auth.passwords import Passwords, check_policy
from builtin_plugins.auth.revocation import Revocations
from builtin_plugins.auth.throttle import Throttle, ip_key, user_key
from builtin_plugins.auth.tokens import AccessTokens, InvalidToken, RefreshTokens, new_salt
from builtin_plugins.auth.users import USERNAME, UserAdmin
from sdk import BadRequest, Event, Principal, TooManyRequests, Unauthorized

if TYPE_CHECKING:
    from builtin_plugins.auth.oidc import OidcLogin

log = structlog.get_logger("taylordash.auth")


def load_oidc() -> type[OidcLogin]:
    """The OIDC client class, imported only when OIDC is configured (authlib is heavy to import)."""
    with warnings.catch_warnings():
        # authlib prefers httpx2 and notes its fallback to httpx, which is what this project ships;
        # its module installs an "always" filter on import, so ours goes in front of it afterwards.
        import authlib.deprecate  # noqa: F401

        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from builtin_plugins.auth.oidc import OidcLogin

    return OidcLogin


def normalize_username(username: str) -> str:
    return username.strip().casefold()


def bad_credentials() -> Unauthorized:
    return Unauthorized("invalid username or password", slug="invalid-credentials")


@dataclass(frozen=True, slots=True)
class TokenPair:
    """What a login or refresh hands the client."""

    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str
    session_id: str
    token_type: str = "Bearer"  # noqa: S105 - a scheme name


class AuthService:
    """Everything the auth plugin does, for the HTTP layer, the CLI and other plugins
    (``kernel.services["auth"]``)."""

    def __init__(self, kernel: Any, settings: AuthSettings) -> None:
        self.kernel = kernel
        self.db = kernel.db
        self.settings = settings
        secret = kernel.settings.signing_key()
        self.passwords = Passwords(settings)
        self.access = AccessTokens(
            secret, settings.jwt_algorithm, settings.access_token_seconds, settings.cache_max_entries
        )
        self.refresh_tokens = RefreshTokens(secret)
        self.authenticator = Authenticator(self.db, self.access, settings.cache_seconds, settings.cache_max_entries)
        self.revocations = Revocations(self.authenticator, settings.revocation_wait_seconds, secret)
        self.throttle = Throttle(self.db, settings)
        self.audit = AuditLog(self.db)
        self.users = UserAdmin(self)
        self.api_tokens = ApiTokens(self)
        self.oidc: OidcLogin | None = None
        self._permissions: dict[str, list[str]] = {}

    @classmethod
    async def start(cls, kernel: Any) -> AuthService:
        """The service of a starting kernel: registered as ``kernel.services["auth"]``, listening for
        revocations on the kernel's bus."""
        service = cls(kernel, kernel.plugin_config("auth") or AuthSettings())
        await service.passwords.prepare()
        if service.settings.oidc_enabled:
            service.oidc = load_oidc()(service)
        if not service.revocations.connect(getattr(kernel, "bus", None)):
            log.warning("auth.no_bus", detail="revocations reach other instances only when their caches expire")
        service.audit.start()
        kernel.services["auth"] = service
        return service

    async def stop(self) -> None:
        await self.audit.stop()
        await self.revocations.close()

    # -- events ----------------------------------------------------------------------------------
    async def emit(
        self, session: AsyncSession, action: str, subject_id: str, actor: Actor, payload: dict[str, Any]
    ) -> None:
        """Add the durable event ``auth.<action>`` (``tracker/events/auth/<action>``) to the outbox, in
        ``session``'s transaction: it exists exactly when the change it describes does."""
        who = {"id": actor.id, "role": actor.role or actor.kind} if actor.id else None
        event = Event.create(type=f"auth.{action}", source="auth", subject_id=subject_id, actor=who, payload=payload)
        await self.kernel.publish(session, event)

    # -- login -----------------------------------------------------------------------------------
    async def check_password(self, username: str, password: str, origin: Origin) -> User:
        """The active user ``username`` if ``password`` is theirs. Throttled per username and address;
        every failure costs one argon2 verification and answers the same, whoever exists."""
        name = normalize_username(username)
        keys = [user_key(name), ip_key(origin.ip)]
        wait = await self.throttle.retry_after(keys)
        if wait:
            raise TooManyRequests(
                "too many failed logins; retry later", headers={"Retry-After": str(wait)}, retry_after=wait
            )
        user = await self.users.by_username(name) if USERNAME.match(name) else None
        matches, rehash = await self.passwords.verify(user.password_hash if user else None, password)
        if user is None or not matches or not user.active or user.deleted_at is not None:
            await self.throttle.failed(keys)
            raise bad_credentials()
        await self.throttle.succeeded(keys[0])
        if rehash:
            await self.users.store_password(user.id, await self.passwords.hash(password))
        return user

    async def login(self, username: str, password: str, origin: Origin, note: AuditNote | None = None) -> TokenPair:
        """A new session for valid credentials."""
        if note is not None:
            note.details["username"] = username[:150]
        user = await self.check_password(username, password, origin)
        return await self.start_session(user, "password", origin, note)

    async def start_session(self, user: User, method: str, origin: Origin, note: AuditNote | None = None) -> TokenPair:
        now = utcnow()
        expires = now + timedelta(seconds=self.settings.session_max_seconds)
        row = UserSession(
            user_id=user.id,
            auth_method=method,
            refresh_salt=new_salt(),
            ip=(origin.ip or "")[:64] or None,
            user_agent=(origin.user_agent or "")[:300] or None,
            created_at=now,
            refreshed_at=now,
            refresh_expires_at=min(now + timedelta(seconds=self.settings.refresh_token_seconds), expires),
            expires_at=expires,
        )
        actor = Actor("user", str(user.id), user.username, user.role)
        async with self.db.session() as session:
            session.add(row)
            await session.exec(
                sa.update(User).where(col(User.id) == user.id).values(last_login_at=now)  # type: ignore[arg-type]
            )
            await self.emit(session, "login", str(user.id), actor, {"session_id": str(row.id), "method": method})
            await session.commit()
        if note is not None:
            note.actor = actor
            note.target_id = str(user.id)
            note.details.update(session_id=str(row.id), method=method)
        return self._pair(user.id, row.id, 0, row.refresh_salt)

    def _pair(self, user_id: uuid.UUID, session_id: uuid.UUID, generation: int, salt: str) -> TokenPair:
        return TokenPair(
            access_token=self.access.issue(str(user_id), str(session_id)),
            refresh_token=self.refresh_tokens.issue(session_id, generation, salt),
            expires_in=self.settings.access_token_seconds,
            user_id=str(user_id),
            session_id=str(session_id),
        )

    # -- refresh ---------------------------------------------------------------------------------
    async def refresh(self, token: str, note: AuditNote | None = None) -> TokenPair:
        """Rotate a refresh token. Presenting a superseded one revokes its whole session."""
        try:
            session_id, generation, mac = RefreshTokens.parse(token)
        except InvalidToken:
            raise Unauthorized("invalid refresh token", slug="invalid-token") from None
        async with self.db.session() as session:
            row = await session.get(UserSession, session_id)
            if row is None or not self.refresh_tokens.genuine(session_id, generation, row.refresh_salt, mac):
                raise Unauthorized("invalid refresh token", slug="invalid-token")
            if note is not None:
                note.target_id = str(row.user_id)
                note.details["session_id"] = str(session_id)
            if row.revoked_at is not None:
                raise Unauthorized("the session has been revoked", slug="session-revoked")
            if generation != row.refresh_generation:
                await session.rollback()
                await self.revoke_sessions([session_id], "refresh-reuse", Actor("system"))
                if note is not None:
                    note.details["reuse"] = True
                raise Unauthorized("refresh token reused; the session is revoked", slug="refresh-token-reused")
            now = utcnow()
            user = await session.get(User, row.user_id)
            if min(row.expires_at, row.refresh_expires_at) <= now:
                raise Unauthorized("the session has expired", slug="session-expired")
            if user is None or not user.active or user.deleted_at is not None:
                raise Unauthorized("the session has been revoked", slug="session-revoked")
            refresh_until = min(now + timedelta(seconds=self.settings.refresh_token_seconds), row.expires_at)
            rotated = await session.exec(
                sa.update(UserSession)
                .where(
                    col(UserSession.id) == session_id,
                    col(UserSession.refresh_generation) == generation,
                    col(UserSession.revoked_at).is_(None),
                )
                .values(
                    refresh_generation=generation + 1,
                    refreshed_at=now,
                    refresh_expires_at=refresh_until,
                )
            )
            if rotated.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                await self.revoke_sessions([session_id], "refresh-reuse", Actor("system"))
                raise Unauthorized("refresh token reused; the session is revoked", slug="refresh-token-reused")
            actor = Actor("user", str(user.id), user.username, user.role)
            await self.emit(session, "refreshed", str(user.id), actor, {"session_id": str(session_id)})
            await session.commit()
        if note is not None:
            note.actor = actor
        return self._pair(user.id, session_id, generation + 1, row.refresh_salt)

    # -- logout and revocation -------------------------------------------------------------------
    async def logout(self, credential: str, note: AuditNote | None = None) -> Principal:
        """End the session an access token belongs to (idempotent for a revoked session)."""
        try:
            claims = self.access.verify(credential)
            user_id, session_id = uuid.UUID(claims.user_id), uuid.UUID(claims.session_id)
        except (InvalidToken, ValueError) as exc:
            raise Unauthorized(str(exc), slug="invalid-token") from None
        async with self.db.session() as session:
            user = await session.get(User, user_id)
        if user is None:
            raise Unauthorized("unknown user", slug="invalid-token")
        principal = Principal(
            id=str(user.id), role=user.role, name=user.username, kind="user", session_id=claims.session_id
        )
        if note is not None:
            note.actor = Actor.of(principal)
            note.target_id = str(user.id)
            note.details["session_id"] = claims.session_id
        await self.revoke_sessions([session_id], "logout", Actor.of(principal))
        return principal

    async def revoke_sessions(
        self, session_ids: list[uuid.UUID], reason: str, actor: Actor, users: list[uuid.UUID] | None = None
    ) -> int:
        """Revoke sessions now, in the database and in every instance's cache (with every cached
        credential of ``users``). Returns how many were live."""
        async with self.db.session() as session:
            live = list(
                (
                    await session.exec(
                        select(UserSession).where(
                            col(UserSession.id).in_(session_ids), col(UserSession.revoked_at).is_(None)
                        )
                    )
                ).all()
            )
            now = utcnow()
            for row in live:
                row.revoked_at = now
                row.revoked_reason = reason[:50]
                session.add(row)
                action = "logout" if reason == "logout" else "session_revoked"
                payload = {"session_id": str(row.id), "reason": reason}
                await self.emit(session, action, str(row.user_id), actor, payload)
            await session.commit()
        await self.revocations.announce(sessions=[str(s) for s in session_ids], users=[str(u) for u in users or ()])
        return len(live)

    async def revoke_user_sessions(self, user_id: uuid.UUID, reason: str, actor: Actor) -> int:
        async with self.db.session() as session:
            ids = list(
                (
                    await session.exec(
                        select(UserSession.id).where(
                            col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None)
                        )
                    )
                ).all()
            )
        return await self.revoke_sessions(ids, reason, actor, users=[user_id])

    # -- password change by its owner --------------------------------------------------------------
    async def change_password(
        self, username: str, current: str, new: str, origin: Origin, note: AuditNote | None = None
    ) -> None:
        """Set a new password after proving the current one; every session of the user ends."""
        user = await self.check_password(username, current, origin)
        actor = Actor("user", str(user.id), user.username, user.role)
        if note is not None:
            note.actor = actor
            note.target_id = str(user.id)
        if new == current:
            raise BadRequest("the new password equals the current one", slug="password-unchanged")
        check_policy(new, user.username, self.settings.password_min_length, "new_password")
        await self.users.store_password(user.id, await self.passwords.hash(new))
        await self.revoke_user_sessions(user.id, "password-changed", actor)

    # -- requests ----------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Principal | Awaitable[Principal] | None:
        """The principal behind the request's bearer credential (``None``: it carries none of ours),
        also left in the request state for the audit trail, which records who was refused, too."""
        credential = None
        for name, value in request.scope["headers"]:  # the raw list: cheaper than building Headers
            if name == b"authorization":
                if value[:7].lower() == b"bearer ":
                    credential = value[7:].decode("latin-1").strip()
                break
        if not credential:
            return None
        result = self.authenticator.authenticate(credential)
        if result is None or isinstance(result, Principal):
            request.scope.setdefault("state", {})["authenticated"] = result
            return result
        return self._remember(request, result)

    @staticmethod
    async def _remember(request: Request, pending: Awaitable[Principal]) -> Principal:
        principal = await pending
        request.scope.setdefault("state", {})["authenticated"] = principal
        return principal

    # -- who am I ------------------------------------------------------------------------------------
    def permissions_of(self, role: str) -> list[str]:
        known = self._permissions.get(role)
        if known is None:
            known = [name for name, roles in self.kernel.permissions.as_dict().items() if role in roles]
            self._permissions[role] = known
        return known
