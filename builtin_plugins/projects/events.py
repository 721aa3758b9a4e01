"""The one place this plugin publishes events: every change goes through :func:`publish`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sdk import Event

SOURCE = "projects"


async def publish(
    kernel: Any,
    session: AsyncSession,
    type: str,
    subject_id: object,
    actor: Any,
    project_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **extra: Any,
) -> None:
    """Add the event ``type`` about ``subject_id`` to ``session``'s transaction (the outbox).

    Every payload names its ``project_id`` (time travel selects a project's history by it) and
    carries the object's document ``before`` and ``after`` the change (``None`` when absent)."""
    payload = {"project_id": str(project_id), "before": before, "after": after, **extra}
    event = Event.create(type=type, source=SOURCE, subject_id=str(subject_id), actor=actor, payload=payload)
    await kernel.publish(session, event)
