"""The lifecycle of an uploaded plugin, and the event and audit entry every transition leaves.

    uploaded -> scanned (pass | fail) -> enabled <-> disabled -> quarantined (by violations) -> removed

A plugin can be removed from any state. Enabling needs a passing verdict, or an administrator's
override with a reason; so does enabling a quarantined plugin again.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from sdk import Conflict, Event, Principal

log = structlog.get_logger("taylordash.plugins")

TRANSITIONS: dict[str, frozenset[str]] = {
    "uploaded": frozenset({"scanned", "removed"}),
    "scanned": frozenset({"scanned", "enabled", "removed"}),
    "enabled": frozenset({"scanned", "disabled", "quarantined", "removed"}),
    "disabled": frozenset({"scanned", "enabled", "quarantined", "removed"}),
    "quarantined": frozenset({"scanned", "enabled", "removed"}),
    "removed": frozenset(),
}
CLI_PRINCIPAL = Principal(id="cli", role="admin", name="command line", kind="cli")


class InvalidTransition(Conflict):
    slug = "invalid-transition"


def check_transition(name: str, current: str, wanted: str) -> None:
    """Raise 409 ``invalid-transition`` unless the lifecycle allows ``current -> wanted``."""
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(
            f"plugin {name!r} is {current}; it cannot become {wanted}", status_now=current, wanted=wanted
        )


def _actor(principal: Principal | None) -> dict[str, str] | None:
    if principal is None:
        return None
    return {"id": principal.id[:200], "role": (principal.role or principal.kind)[:50]}


async def record(
    kernel: Any,
    session: AsyncSession,
    action: str,
    subject_id: str,
    principal: Principal | None,
    payload: dict[str, Any],
) -> None:
    """Add the event ``plugins.<action>`` to the outbox and an audit entry to ``session``'s transaction.

    The audit entry goes through the auth plugin's service (``kernel.services["auth"].audit``) when
    that plugin runs; without it the transition is only logged."""
    publish = getattr(kernel, "publish", None)
    if publish is not None:
        event = Event.create(
            type=f"plugins.{action}", source="plugins", subject_id=subject_id, actor=_actor(principal), payload=payload
        )
        await publish(session, event)
    auth = kernel.services.get("auth")
    audit = getattr(auth, "audit", None)
    if audit is not None:
        entry = audit.entry(
            f"plugins.{action}",
            "success",
            principal or CLI_PRINCIPAL,
            target_id=subject_id,
            details=payload,
        )
        await audit.record(entry, session)
    log.info("plugins.transition", action=action, plugin=payload.get("name"), actor=_actor(principal))
