"""Login throttling per username and per client address, shared by every instance through the database.

After ``threshold`` failures without a quiet period of ``window`` seconds, each further failure locks the
key for ``base * 2 ** (failures - threshold)`` seconds, up to ``maximum``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.models import LoginThrottle, utcnow
from kernel.db import Database


def user_key(username: str) -> str:
    return f"user:{username.strip().casefold()[:150]}".replace("\x00", "\ufffd")


def ip_key(ip: str | None) -> str:
    return f"ip:{(ip or 'unknown')[:64]}".replace("\x00", "\ufffd")


class Throttle:
    """Reads and records failed logins; a locked key makes login answer 429 with ``Retry-After``."""

    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.db = db
        self.window = timedelta(seconds=settings.throttle_window_seconds)
        self.base = settings.throttle_base_seconds
        self.maximum = settings.throttle_max_seconds
        self.thresholds = {"user": settings.throttle_user_failures, "ip": settings.throttle_ip_failures}

    async def retry_after(self, keys: Sequence[str]) -> int:
        """Seconds until every key in ``keys`` is unlocked (0: none is locked)."""
        now = utcnow()
        async with self.db.session() as session:
            rows = await session.exec(select(LoginThrottle).where(col(LoginThrottle.key).in_(list(keys))))
            waits = [(r.locked_until - now).total_seconds() for r in rows if r.locked_until and r.locked_until > now]
        return math.ceil(max(waits)) if waits else 0

    def _lockout(self, failures: int, threshold: int) -> float:
        if failures < threshold:
            return 0.0
        return min(self.base * 2 ** min(failures - threshold, 30), self.maximum)

    async def failed(self, keys: Sequence[str]) -> None:
        """Count one failure against each key and lock those past their threshold."""
        for key in keys:
            for _attempt in range(3):
                try:
                    await self._fail(key)
                    break
                except IntegrityError:  # another instance created the row first: count again
                    continue

    async def _fail(self, key: str) -> None:
        now = utcnow()
        threshold = self.thresholds[key.split(":", 1)[0]]
        async with self.db.session() as session:
            query = select(LoginThrottle).where(LoginThrottle.key == key)
            if not self.db.is_sqlite:
                query = query.with_for_update()
            row = (await session.exec(query)).first()
            if row is None:
                row = LoginThrottle(key=key, failures=0, last_failure_at=now)
            elif now - row.last_failure_at > self.window:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            lockout = self._lockout(row.failures, threshold)
            row.locked_until = now + timedelta(seconds=lockout) if lockout else None
            session.add(row)
            await session.commit()

    async def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (a successful login of that username)."""
        async with self.db.session() as session:
            row = await session.get(LoginThrottle, key)
            if row is not None:
                await session.delete(row)
                await session.commit()
