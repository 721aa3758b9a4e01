"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from builtin_plugins.auth.config import AuthSettings
from sdk import ValidationFailed

MAX_PASSWORD_LENGTH = 1024


def policy_problems(password: str, username: str, min_length: int) -> list[str]:
    """What is wrong with ``password`` for ``username`` (empty when acceptable)."""
    problems = []
    if len(password) < min_length:
        problems.append(f"the password must have at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().casefold() == username.strip().casefold():
        problems.append("the password must not equal the username")
    return problems


def check_policy(password: str, username: str, min_length: int, field: str = "password") -> None:
    """Raise a 422 problem naming each rule ``password`` breaks."""
    problems = policy_problems(password, username, min_length)
    if problems:
        errors = [{"loc": [field], "msg": msg, "type": "password_policy"} for msg in problems]
        raise ValidationFailed("the password does not meet the password policy", errors=errors)


class Passwords:
    """argon2id hashing with the configured cost. Every call runs in a worker thread."""

    def __init__(self, settings: AuthSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        self._decoy: str | None = None

    async def prepare(self) -> None:
        """Make the decoy hash: verifying against it when there is no user costs as much as a real check."""
        self._decoy = await self.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        if self._decoy is None:
            self._decoy = self.hasher.hash(secrets.token_urlsafe(24))
        try:
            self.hasher.verify(stored or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, False
        if stored is None:
            return False, False
        return True, self.hasher.check_needs_rehash(stored)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """``(matches, needs_rehash)``. ``stored=None`` still spends a full verification, then fails."""
        return await asyncio.to_thread(self._verify, stored, password)
