"""Plugin discovery, ordering, isolation of failures and hook timing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from kernel.plugins import PluginHost, sequence_of
from sdk import Route, hookimpl

BUILTIN = ("builtin_plugins.plugins",)


class Named:
    def __init__(self, label: str) -> None:
        self.label = label

    @hookimpl
    def register_nav_items(self) -> list[str]:
        return [self.label]


class First(Named):
    @hookimpl(tryfirst=True)
    def register_nav_items(self) -> list[str]:
        return [self.label]


def labels(host: PluginHost) -> list[str]:
    return [item for _, items in host.collect("register_nav_items", sequence_of(str), kernel=None) for item in items]


@pytest.fixture
def entry_point_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two installed distributions exposing plugins through the taylordash.plugins entry point group."""
    for dist, ep_name, module in (("zeta_pkg", "zeta", "zeta_plugin"), ("alpha_pkg", "alpha", "alpha_plugin")):
        (tmp_path / f"{module}.py").write_text(
            textwrap.dedent(
                f'''
                """The {ep_name} plugin."""
                from sdk import hookimpl

                @hookimpl
                def register_nav_items():
                    return ["{ep_name}"]
                '''
            )
        )
        info = tmp_path / f"{dist}-2.5.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 2.5.0\n")
        (info / "entry_points.txt").write_text(f"[taylordash.plugins]\n{ep_name} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_order_is_builtins_then_entry_points_by_name_then_extras(entry_point_plugins: None):
    host = PluginHost(builtins=BUILTIN, extra=[("x1", Named("x1")), ("x2", Named("x2"))])
    host.register()
    assert list(host.records) == ["plugins", "alpha", "zeta", "x1", "x2"]
    assert host.records["alpha"].version == "2.5.0"
    assert host.records["alpha"].builtin is False
    assert host.records["alpha"].description == "The alpha plugin."
    assert labels(host) == ["alpha", "zeta", "x1", "x2"]


def test_tryfirst_moves_an_implementation_ahead():
    host = PluginHost(builtins=(), extra=[("a", Named("a")), ("b", First("b")), ("c", Named("c"))])
    host.register()
    assert labels(host) == ["b", "a", "c"]


def test_disabled_plugins_are_not_registered():
    host = PluginHost(builtins=(), extra=[("a", Named("a")), ("b", Named("b"))])
    host.register(disabled={"a"})
    assert labels(host) == ["b"]
    assert host.records["a"].enabled is False
    assert [r.name for r in host.active] == ["b"]


def test_import_failure_is_isolated():
    host = PluginHost(builtins=("tests.unit.no_such_module", "builtin_plugins.plugins"))
    host.register()
    failed = host.records["no_such_module"]
    assert failed.active is False
    assert "import failed" in failed.error
    assert host.records["plugins"].active


def test_unknown_hook_is_named():
    class Typo:
        @hookimpl
        def register_rouets(self) -> list[Route]:
            return []

    host = PluginHost(builtins=(), extra=[("typo", Typo()), ("ok", Named("ok"))])
    host.register()
    assert "register_rouets" in host.records["typo"].error
    assert not host.pm.has_plugin("typo")
    assert labels(host) == ["ok"]


def test_raising_hook_disables_only_that_plugin():
    class Broken:
        @hookimpl
        def register_nav_items(self) -> list[str]:
            raise RuntimeError("database exploded")

    host = PluginHost(builtins=(), extra=[("a", Named("a")), ("broken", Broken()), ("c", Named("c"))])
    host.register()
    assert labels(host) == ["a", "c"]
    assert host.records["broken"].error == "hook register_nav_items raised RuntimeError('database exploded')"
    assert not host.pm.has_plugin("broken")


def test_wrong_return_type_names_plugin_hook_and_type():
    class Wrong:
        @hookimpl
        def register_nav_items(self) -> str:
            return "not a list"

    class WrongItem:
        @hookimpl
        def register_nav_items(self) -> list[object]:
            return [42]

    host = PluginHost(builtins=(), extra=[("wrong", Wrong()), ("item", WrongItem()), ("ok", Named("ok"))])
    host.register()
    assert labels(host) == ["ok"]
    assert host.records["wrong"].error == "hook register_nav_items returned str: expected a list of str"
    assert "found an item of type int" in host.records["item"].error


def test_hook_calls_are_timed_per_plugin_and_per_hook():
    registry = CollectorRegistry()
    host = PluginHost(registry, builtins=(), extra=[("a", Named("a"))])
    host.register()
    labels(host)
    host.pm.hook.register_nav_items(kernel=None)
    count = registry.get_sample_value(
        "taylordash_hook_call_duration_seconds_count", {"hook": "register_nav_items", "plugin": "a"}
    )
    whole = registry.get_sample_value(
        "taylordash_hook_call_duration_seconds_count", {"hook": "register_nav_items", "plugin": "*"}
    )
    assert count == 1 and whole == 1


def test_duplicate_names_are_rejected():
    host = PluginHost(builtins=BUILTIN, extra=[("plugins", Named("dup"))])
    host.register()
    assert host.records["plugins"].active
    clash = [r for r in host.records.values() if r.name.startswith("plugins@")]
    assert clash and "clashes" in clash[0].error
