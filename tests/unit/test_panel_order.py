"""Third-party panels on the overview: which plugins' panels are shown, and in which order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from builtin_plugins.dashboard.panels import third_party_panels


def row(name: str, status: str, permissions: list[str], panels: list[dict[str, Any]]) -> SimpleNamespace:
    manifest = {"permissions": permissions, "contributions": {"panels": panels}}
    return SimpleNamespace(name=name, status=status, manifest=manifest)


class Registry:
    def __init__(self, rows: list[SimpleNamespace]) -> None:
        self._rows = rows

    async def rows(self) -> list[SimpleNamespace]:
        return self._rows


async def test_enabled_panels_with_the_permission_by_order_then_title() -> None:
    rows = [
        row("late", "enabled", ["dashboard:panel"], [{"id": "b", "title": "Beta"}, {"id": "a", "title": "Alpha"}]),
        row("first", "enabled", ["dashboard:panel"], [{"id": "z", "title": "Zeta", "order": 5}]),
        row("off", "disabled", ["dashboard:panel"], [{"id": "o", "title": "Off", "order": 1}]),
        row("unpermitted", "enabled", [], [{"id": "u", "title": "Unpermitted", "order": 1}]),
        row("last", "enabled", ["dashboard:panel"], [{"id": "l", "title": "Last", "order": 500}]),
    ]
    kernel = SimpleNamespace(services={"plugins": Registry(rows)})
    shown = await third_party_panels(kernel)
    assert [(p.plugin, p.id, p.order) for p in shown] == [
        ("first", "z", 5),
        ("late", "a", 100),
        ("late", "b", 100),
        ("last", "l", 500),
    ]
    assert shown[0].url == "/panels/first/z/index.html"


async def test_no_registry_no_panels() -> None:
    assert await third_party_panels(SimpleNamespace(services={})) == []
