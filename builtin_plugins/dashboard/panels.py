"""Third-party dashboard panels: static files read from the plugin's stored package.

An enabled uploaded plugin whose manifest grants ``dashboard:panel`` and lists panels under
``[[contributions.panels]]`` contributes each panel as the folder ``panels/<panel id>/`` next to its
``taylordash-plugin.toml`` (``index.html`` is the panel's page). Files are read from the package in
the registry's quarantine — the plugin's code is never imported for this — and served under
``/panels/<plugin>/<panel id>/…`` with a policy that lets the page run its own scripts and nothing
else: no network, no forms, no plugins, framed only by this site. The dashboard frames it in
``<iframe sandbox="allow-scripts">``: an opaque origin, so it reaches no cookie, storage or DOM of
the host, and only talks to it through the postMessage bridge (``static/app.js``), which answers
only what the manifest's granted permissions allow.
"""

from __future__ import annotations

import asyncio
import mimetypes
import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sdk import MANIFEST_FILE, NotFound

MAX_FILE_BYTES = 2 * 1024 * 1024
PANEL_PERMISSION = "dashboard:panel"
# What the host's bridge answers, and the manifest permission each request needs.
BRIDGE_METHODS = {
    "projects.list": "projects:read",
    "project.get": "projects:read",
    "events.recent": "events:read",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}


@dataclass(frozen=True, slots=True)
class ThirdPartyPanel:
    plugin: str
    id: str
    title: str
    permissions: tuple[str, ...]
    order: int = 100

    @property
    def url(self) -> str:
        return f"/panels/{self.plugin}/{self.id}/index.html"

    @property
    def bridge_methods(self) -> list[str]:
        return sorted(m for m, needed in BRIDGE_METHODS.items() if needed in self.permissions)


def _granted(row: Any) -> tuple[str, ...]:
    return tuple((row.manifest or {}).get("permissions", []))


async def third_party_panels(kernel: Any) -> list[ThirdPartyPanel]:
    """Panels of every enabled uploaded plugin that holds ``dashboard:panel``, by their declared
    ``order``, then title."""
    registry = kernel.services.get("plugins")
    if registry is None:
        return []
    panels = []
    for row in await registry.rows():
        permissions = _granted(row)
        if row.status != "enabled" or PANEL_PERMISSION not in permissions:
            continue
        for panel in ((row.manifest or {}).get("contributions") or {}).get("panels", []):
            order = panel.get("order")
            panels.append(
                ThirdPartyPanel(row.name, panel["id"], panel["title"], permissions, 100 if order is None else order)
            )
    return sorted(panels, key=lambda p: (p.order, p.title))


def _clean(relative: str) -> str | None:
    """A package-relative path without ``..``, absolute parts or backslashes, else ``None``."""
    if "\\" in relative or "\x00" in relative:
        return None
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("..", ".", "") or p.startswith("/") for p in parts):
        return None
    return "/".join(parts)


def _read_zip(path: Path, wanted: str) -> bytes | None:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        member = _member(names, wanted)
        if member is None:
            return None
        info = archive.getinfo(member)
        if info.file_size > MAX_FILE_BYTES:
            return None
        return archive.read(member)


def _read_tar(path: Path, wanted: str) -> bytes | None:
    with tarfile.open(path, "r:*") as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        member = _member(list(members), wanted)
        if member is None or members[member].size > MAX_FILE_BYTES:
            return None
        handle = archive.extractfile(members[member])
        return handle.read() if handle is not None else None


def _member(names: list[str], wanted: str) -> str | None:
    """The archive member ``wanted`` (relative to the shallowest manifest's folder)."""
    manifests = sorted((n for n in names if posixpath.basename(n) == MANIFEST_FILE), key=lambda n: (n.count("/"), n))
    if not manifests:
        return None
    base = posixpath.dirname(manifests[0])
    member = posixpath.join(base, wanted) if base else wanted
    return member if member in names else None


def read_package_file(package: Path, relative: str) -> bytes | None:
    """The bytes of ``relative`` inside the package archive, or ``None``."""
    name = package.name.lower()
    try:
        if name.endswith((".zip", ".whl")):
            return _read_zip(package, relative)
        if name.endswith((".tar.gz", ".tgz")):
            return _read_tar(package, relative)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, KeyError):
        return None
    return None


async def panel_file(kernel: Any, plugin: str, panel_id: str, relative: str) -> tuple[bytes, str]:
    """``(content, media type)`` of a panel's file; 404 unless the plugin is enabled, holds
    ``dashboard:panel``, declares the panel and its package has the file."""
    registry = kernel.services.get("plugins")
    clean = _clean(relative)
    if registry is None or clean is None:
        raise NotFound("no such panel file", slug="panel-not-found")
    try:
        row = await registry.get(plugin)
    except NotFound:
        raise NotFound("no such panel file", slug="panel-not-found") from None
    declared = {p["id"] for p in ((row.manifest or {}).get("contributions") or {}).get("panels", [])}
    if (
        row.status != "enabled"
        or PANEL_PERMISSION not in _granted(row)
        or panel_id not in declared
        or row.package_path is None
    ):
        raise NotFound("no such panel file", slug="panel-not-found")
    package = registry.store.absolute(row.package_path)
    content = await asyncio.to_thread(read_package_file, package, f"panels/{panel_id}/{clean}")
    if content is None:
        raise NotFound("no such panel file", slug="panel-not-found")
    suffix = PurePosixPath(clean).suffix.lower()
    media_type = TYPES.get(suffix) or mimetypes.guess_type(clean)[0] or "application/octet-stream"
    return content, media_type


def panel_policy(origin: str, plugin: str, panel_id: str) -> str:
    """The Content-Security-Policy of a panel's files: its own folder's scripts, styles and images,
    inline styles, nothing else; the page stays sandboxed even when opened outside its frame."""
    own = f"{origin}/panels/{plugin}/{panel_id}/"
    return (
        f"default-src 'none'; script-src {own}; style-src {own} 'unsafe-inline'; img-src {own} data:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
        "sandbox allow-scripts"
    )
