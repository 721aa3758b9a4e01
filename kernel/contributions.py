"""Plain value types that plugins hand to the kernel through hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A readiness check: ``check()`` returns normally when healthy and raises when not."""

    name: str
    check: Callable[[], Awaitable[None]]
    timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class EventHandler:
    """Run ``handler(event)`` for every event whose topic matches the MQTT-style ``pattern``."""

    pattern: str
    handler: Callable[[Any], Awaitable[None]]
    name: str = ""


@dataclass(frozen=True, slots=True)
class Panel:
    """A dashboard panel. Builtin panels render ``template``; third-party ones are framed from ``url``."""

    id: str
    title: str
    permission: str
    template: str | None = None
    url: str | None = None
    order: int = 100


@dataclass(frozen=True, slots=True)
class NavItem:
    """An entry of the dashboard's navigation, shown to principals holding ``permission``."""

    label: str
    href: str
    permission: str
    order: int = 100


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool TaylorDash exposes over MCP: arguments validated by ``input_model``."""

    name: str
    description: str
    permission: str
    handler: Callable[..., Awaitable[Any]]
    input_model: type[BaseModel] | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
