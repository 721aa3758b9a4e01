"""Small plugins the tests register next to the builtin ones."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request

from sdk import Principal, hookimpl


class HeaderAuth:
    """Authenticates ``X-Test-Role: admin|viewer`` so kernel tests need no auth plugin."""

    @hookimpl
    def authenticate(self, request: Request) -> Principal | None:
        role = request.headers.get("x-test-role")
        return Principal(id=f"test-{role}", role=role, name=role) if role else None


class ExtraPermissions:
    """Declares permissions tests routes can name."""

    def __init__(self, permissions: Mapping[str, Sequence[str]]) -> None:
        self.permissions = permissions

    @hookimpl
    def register_permissions(self) -> Mapping[str, Sequence[str]]:
        return self.permissions
