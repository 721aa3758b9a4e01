"""What is in a plugin package: the files to analyse, the manifest, the distribution metadata."""

from __future__ import annotations

import ast
import email.parser
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from sdk.manifest import MANIFEST_FILE

PYTHON_SUFFIXES = frozenset({".py", ".pyw"})
COMPILED_SUFFIXES = frozenset({".pyc", ".pyo", ".so", ".pyd", ".dll", ".dylib"})
TEXT_SUFFIXES_WITHOUT_CODE = frozenset(
    {".txt", ".md", ".rst", ".toml", ".json", ".cfg", ".ini", ".yaml", ".yml", ".html", ".css", ".js", ".svg"}
)
SKIPPED_SOURCE_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
    }
)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(slots=True)
class Package:
    """The files of one target, found under ``root``."""

    root: Path
    kind: str
    python_files: list[Path] = field(default_factory=list)
    pth_files: list[Path] = field(default_factory=list)
    compiled_files: list[Path] = field(default_factory=list)
    manifest_path: Path | None = None
    extra_manifests: list[Path] = field(default_factory=list)
    dist_name: str | None = None
    dist_version: str | None = None
    requirements: list[str] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        """``path`` relative to the package root, with POSIX separators."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.as_posix()


def _has_python_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _is_virtualenv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def discover(root: Path, kind: str) -> Package:
    """Walk ``root`` (without following links) and sort its files into what each analyser needs.

    In a source folder, VCS metadata, caches and virtualenvs are skipped; in an archive nothing is."""
    package = Package(root=root, kind=kind)
    manifests: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if kind == "folder":
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_SOURCE_DIRS and not _is_virtualenv(here / d)]
        dirnames.sort()
        for filename in sorted(filenames):
            path = here / filename
            if path.is_symlink() or not path.is_file():
                continue
            suffix = path.suffix.lower()
            if filename == MANIFEST_FILE:
                manifests.append(path)
            elif suffix in PYTHON_SUFFIXES:
                package.python_files.append(path)
            elif suffix == ".pth":
                package.pth_files.append(path)
            elif suffix in COMPILED_SUFFIXES or ".so." in filename:
                package.compiled_files.append(path)
            elif suffix not in TEXT_SUFFIXES_WITHOUT_CODE and _has_python_shebang(path):
                package.python_files.append(path)
    if manifests:
        manifests.sort(key=lambda p: (len(p.relative_to(root).parts), p.as_posix()))
        package.manifest_path, package.extra_manifests = manifests[0], manifests[1:]
    _read_metadata(package)
    return package


def _requirement_names(lines: list[str]) -> list[str]:
    names = []
    for line in lines:
        match = _REQUIREMENT_NAME.match(line)
        if match:
            names.append(match.group(1))
    return names


def _read_metadata(package: Package) -> None:
    root = package.root
    candidates = [*sorted(root.glob("*.dist-info/METADATA")), root / "PKG-INFO"]
    for path in candidates:
        if path.is_file():
            message = email.parser.Parser().parsestr(path.read_text("utf-8", "replace"))
            package.dist_name = message.get("Name")
            package.dist_version = message.get("Version")
            package.requirements = _requirement_names(message.get_all("Requires-Dist") or [])
            break
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            project = tomllib.loads(pyproject.read_text("utf-8", "replace")).get("project", {})
        except tomllib.TOMLDecodeError:
            project = {}
        if isinstance(project, dict):
            package.dist_name = package.dist_name or _str_or_none(project.get("name"))
            deps = project.get("dependencies", [])
            if isinstance(deps, list):
                package.requirements += _requirement_names([d for d in deps if isinstance(d, str)])
    setup_py = root / "setup.py"
    if setup_py.is_file():
        name, requires = _setup_py_metadata(setup_py)
        package.dist_name = package.dist_name or name
        package.requirements += requires
    package.requirements = sorted(set(package.requirements))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _setup_py_metadata(path: Path) -> tuple[str | None, list[str]]:
    """``name`` and ``install_requires`` of a ``setup(...)`` call, where they are literals."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return None, []
    name: str | None = None
    requires: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                name = _str_or_none(keyword.value.value)
            elif keyword.arg == "install_requires" and isinstance(keyword.value, ast.List | ast.Tuple):
                requires += [
                    e.value for e in keyword.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return name, _requirement_names(requires)


def pth_code_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of a ``.pth`` file that ``site`` executes: those starting with ``import``."""
    lines = []
    for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), start=1):
        if line.startswith(("import ", "import\t")):
            lines.append((number, line))
    return lines
