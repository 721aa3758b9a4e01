"""The plugin manifest, ``taylordash-plugin.toml``: what a plugin is and what it may do.

The manifest is read before any plugin code runs: by the scanner (``taylordash scan``), by the
registry when an operator uploads a plugin, and by the sandbox runner, which refuses every call the
declared permissions do not cover. A minimal manifest::

    name = "hello"
    version = "1.0.0"
    api_version = "1.0"
    entry = "hello_plugin"
    type = "tool"
    description = "Says hello"
    author = "Ada <ada@example.org>"
    permissions = ["projects:read", "events:publish:tracker/events/hello/*"]

    [contributions]
    event_subscriptions = ["tracker/events/projects/+"]
    config_schema = { type = "object", properties = { greeting = { type = "string" } } }

    [[suppressions]]
    rule = "B324"
    path = "hello_plugin/cache.py"
    justification = "sha1 names cache entries; it protects nothing"
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MANIFEST_FILE = "taylordash-plugin.toml"
"""File name of the manifest inside a plugin package."""

API_VERSION = "1.0"
"""Version of the plugin API this kernel offers. A plugin is compatible when its ``api_version`` has
the same major number and a minor number no higher than this one."""

PluginType = Literal["dashboard", "tool", "integration", "visualization"]

PERMISSIONS: dict[str, str] = {
    "projects:read": "Read projects",
    "projects:write": "Create, change and delete projects",
    "components:read": "Read components",
    "components:write": "Create, change and delete components",
    "tasks:read": "Read tasks",
    "tasks:write": "Create, change and delete tasks",
    "events:read": "Read the event history",
    "storage:kv": "A private key-value store",
    "storage:objects": "A private object-storage prefix",
    "http:route": "Serve HTTP routes under /api/v1/x/<plugin>/",
    "http:fetch": "Make outgoing HTTP requests to any host (through the kernel)",
    "dashboard:panel": "Contribute dashboard panels",
    "mcp:tool": "Contribute MCP tools",
}
"""Permissions that take no argument, with what each grants."""

PARAMETERIZED_PERMISSIONS: dict[str, str] = {
    "events:publish": "Publish events on the topics matching the pattern (MQTT wildcards + and #, or *)",
    "events:subscribe": "Receive events on the topics matching the pattern",
    "http:fetch": "Make outgoing HTTP requests to the named host",
}
"""Permissions written ``<prefix>:<argument>``, e.g. ``events:publish:tracker/events/hello/*``."""

_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,62}[a-z0-9]$")
_VERSION = re.compile(r"^\d+(\.\d+){0,3}([._-]?(a|b|rc|dev|post)\d*)?$")
_API_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_PERMISSION = re.compile(r"^[a-z]+:[a-z_]+(:\S+)?$")
_RULE = re.compile(r"^[A-Z]{1,4}\d{3,4}$")


class ManifestError(ValueError):
    """The manifest is missing, is not TOML, or does not match the schema. ``problems`` holds one
    human-readable line per problem (``field: message``)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class RouteContribution(BaseModel):
    """An HTTP route the plugin serves (needs the ``http:route`` permission)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(pattern=r"^/[A-Za-z0-9_./{}:-]*$")
    methods: list[Literal["GET", "POST", "PUT", "PATCH", "DELETE"]] = Field(default_factory=lambda: ["GET"])
    summary: str = ""


class PanelContribution(BaseModel):
    """A dashboard panel the plugin contributes (needs the ``dashboard:panel`` permission). Its files
    are the package's folder ``panels/<id>/``, whose ``index.html`` the dashboard frames."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    title: str = Field(min_length=1, max_length=120)
    order: int = Field(100, ge=0, le=10000, description="Position among the dashboard's panels (lower first)")


class Contributions(BaseModel):
    """What the plugin adds to TaylorDash."""

    model_config = ConfigDict(extra="forbid")

    routes: list[RouteContribution] = Field(default_factory=list)
    event_subscriptions: list[str] = Field(default_factory=list)
    panels: list[PanelContribution] = Field(default_factory=list)
    config_schema: dict[str, Any] | None = None
    """A JSON Schema (draft 2020-12) the plugin's configuration is validated against."""


class Suppression(BaseModel):
    """Accept the scanner findings of ``rule`` (optionally only in files matching the glob ``path``),
    for the stated reason. Suppressed findings stay in every report, with the justification."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(pattern=_RULE.pattern)
    path: str | None = None
    justification: str = Field(min_length=10, max_length=1000)

    @field_validator("justification")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if len(value.strip()) < 10:
            raise ValueError("explain in at least 10 characters why the finding is acceptable")
        return value.strip()

    def covers(self, rule_id: str, file: str) -> bool:
        """Whether this entry suppresses a finding of ``rule_id`` in ``file`` (a package-relative path)."""
        return rule_id == self.rule and (self.path is None or fnmatch.fnmatchcase(file, self.path))


class PluginManifest(BaseModel):
    """The parsed ``taylordash-plugin.toml``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME.pattern, description="Lower-case name, 3-64 characters: a-z, 0-9, - and _")
    version: str = Field(pattern=_VERSION.pattern)
    api_version: str = Field(pattern=_API_VERSION.pattern)
    entry: str = Field(pattern=_MODULE.pattern, description="The module the runner imports")
    type: PluginType
    description: str = Field(min_length=1, max_length=500)
    author: str = Field(min_length=1, max_length=200)
    permissions: list[str] = Field(default_factory=list)
    contributions: Contributions = Field(default_factory=Contributions)
    suppressions: list[Suppression] = Field(default_factory=list)

    @field_validator("permissions")
    @classmethod
    def _permission_syntax(cls, value: list[str]) -> list[str]:
        for permission in value:
            if not _PERMISSION.match(permission):
                raise ValueError(f"{permission!r} is not written <area>:<action>[:<argument>]")
        return value

    @classmethod
    def parse(cls, text: str) -> PluginManifest:
        """Parse manifest TOML, raising :class:`ManifestError` with one line per problem."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError([f"not valid TOML: {exc}"]) from None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "(manifest)"
                problems.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
            raise ManifestError(problems) from None

    @classmethod
    def load(cls, path: str | Path) -> PluginManifest:
        """Read and parse the manifest at ``path``."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError([f"cannot read {path}: {exc}"]) from None
        return cls.parse(text)

    def unknown_permissions(self) -> list[str]:
        """Declared permissions that TaylorDash does not know."""
        return [p for p in self.permissions if not is_known_permission(p)]

    def is_compatible(self, api_version: str = API_VERSION) -> bool:
        """Whether the kernel's ``api_version`` can run this plugin."""
        return api_compatible(self.api_version, api_version)

    def grants(self, permission: str) -> bool:
        """Whether the declared permissions cover ``permission``. A bare permission covers every
        argument (``http:fetch`` covers ``http:fetch:example.org``); topic arguments match MQTT-style."""
        return permission_granted(self.permissions, permission)


def permission_granted(declared_permissions: list[str], permission: str) -> bool:
    """Whether ``declared_permissions`` cover ``permission`` (the rule of :meth:`PluginManifest.grants`)."""
    area_action, _, argument = _split(permission)
    for declared in declared_permissions:
        if declared == permission or (argument and declared == area_action):
            return True
        declared_prefix, _, pattern = _split(declared)
        if argument and pattern and declared_prefix == area_action and topic_matches(pattern, argument):
            return True
    return False


def _split(permission: str) -> tuple[str, str, str]:
    parts = permission.split(":", 2)
    prefix = ":".join(parts[:2])
    return prefix, ":", parts[2] if len(parts) == 3 else ""


def is_known_permission(permission: str) -> bool:
    """Whether ``permission`` is one TaylorDash knows (see :data:`PERMISSIONS` and
    :data:`PARAMETERIZED_PERMISSIONS`)."""
    if permission in PERMISSIONS:
        return True
    parts = permission.split(":", 2)
    return len(parts) == 3 and f"{parts[0]}:{parts[1]}" in PARAMETERIZED_PERMISSIONS and bool(parts[2])


def api_compatible(plugin_api: str, kernel_api: str = API_VERSION) -> bool:
    """Same major version, and a minor version the kernel has reached."""
    wanted, offered = _API_VERSION.match(plugin_api), _API_VERSION.match(kernel_api)
    if wanted is None or offered is None:
        return False
    return wanted.group(1) == offered.group(1) and int(wanted.group(2) or 0) <= int(offered.group(2) or 0)


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT-style match: ``+`` one level, ``#`` (or a trailing ``*``) the rest."""
    want = pattern.split("/")
    have = topic.split("/")
    for index, part in enumerate(want):
        if part in ("#", "*") and index == len(want) - 1:
            return len(have) >= index
        if index >= len(have) or (part != "+" and part != have[index]):
            return False
    return len(want) == len(have)


__all__ = [
    "API_VERSION",
    "MANIFEST_FILE",
    "PARAMETERIZED_PERMISSIONS",
    "PERMISSIONS",
    "Contributions",
    "ManifestError",
    "PanelContribution",
    "PluginManifest",
    "PluginType",
    "RouteContribution",
    "Suppression",
    "api_compatible",
    "is_known_permission",
    "permission_granted",
    "topic_matches",
]
