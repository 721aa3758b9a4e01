"""Static checks of the deployment files: what the kernel accepts and serves, to check them against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kernel.app import Kernel
from kernel.plugins import PluginHost, model_class_or_none
from kernel.routing import Route
from kernel.settings import ENV_PREFIX, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


class SettingNames:
    """Which ``TD_*`` environment variables the kernel and its builtin plugins accept."""

    def __init__(self) -> None:
        self.kernel = {ENV_PREFIX + name.upper() for name in Settings.model_fields if name != "plugins"}
        host = PluginHost()
        host.register()
        self.plugins: dict[str, set[str]] = {
            name: {field.upper() for field in model.model_fields}
            for name, model in host.collect("plugin_config_schema", model_class_or_none)
            if model is not None
        }

    def problem(self, name: str) -> str | None:
        """Why ``name`` is not a setting, or ``None`` when it is one."""
        if name in self.kernel:
            return None
        prefix = ENV_PREFIX + "PLUGINS__"
        if not name.startswith(prefix):
            return f"{name} is not a kernel setting"
        plugin, _, field = name.removeprefix(prefix).partition("__")
        fields = self.plugins.get(plugin.lower())
        if fields is None:
            return f"{name}: no builtin plugin {plugin.lower()!r} with a configuration schema"
        if field.split("__")[0] not in fields:
            return f"{name}: plugin {plugin.lower()!r} has no setting {field.lower()!r}"
        return None


@pytest.fixture(scope="session")
def setting_names() -> SettingNames:
    return SettingNames()


@pytest.fixture(scope="session")
def public_routes(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Paths of the kernel's own public routes (health and docs), which probes may use."""
    kernel = Kernel(load_settings(data_dir=tmp_path_factory.mktemp("routes")))
    return {r.path for r in kernel._kernel_routes() if isinstance(r, Route) and r.public}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(ROOT / "compose.yml")
