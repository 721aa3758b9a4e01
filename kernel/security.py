"""Principals, roles and the permission registry. Authentication itself is a plugin's job."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kernel.errors import StartupError

ROLES = ("admin", "viewer")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request: a user (through a session), an API token or a sandboxed plugin."""

    id: str
    role: str
    name: str = ""
    kind: str = "user"
    session_id: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


class PermissionRegistry:
    """Permission name → roles granted it. Plugins add permissions through ``register_permissions``."""

    def __init__(self) -> None:
        self._roles: dict[str, frozenset[str]] = {}
        self._owner: dict[str, str] = {}

    def add(self, plugin: str, permissions: Mapping[str, Iterable[str]]) -> None:
        for name, roles in permissions.items():
            roles = frozenset(roles)
            unknown = roles - set(ROLES)
            if unknown:
                raise StartupError(f"plugin {plugin!r}: permission {name!r} names unknown roles {sorted(unknown)}")
            if name in self._owner and self._owner[name] != plugin:
                raise StartupError(
                    f"plugin {plugin!r}: permission {name!r} is already declared by {self._owner[name]!r}"
                )
            self._roles[name] = roles
            self._owner[name] = plugin

    def __contains__(self, name: object) -> bool:
        return name in self._roles

    def allows(self, principal: Principal, permission: str) -> bool:
        return principal.role in self._roles.get(permission, ())

    def as_dict(self) -> dict[str, list[str]]:
        return {name: sorted(roles) for name, roles in sorted(self._roles.items())}
