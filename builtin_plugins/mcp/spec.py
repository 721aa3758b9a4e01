"""What the supervisor needs to reach one server, and the errors it reports (no MCP SDK import here:
the SDK is loaded only once a server is started or /mcp is first used)."""

from __future__ import annotations

from dataclasses import dataclass, field

STATES = ("stopped", "starting", "ready", "degraded", "failed")


@dataclass(frozen=True)
class ServerSpec:
    """What is needed to reach one server (secrets in clear: never log or return this object)."""

    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def secrets(self) -> list[str]:
        return [*self.env.values(), *self.headers.values()]


class ServerGone(Exception):
    """The server stopped answering for good: its process exited or its pings kept failing."""


class NotConnected(Exception):
    """A call needs a ready (or degraded) server."""
