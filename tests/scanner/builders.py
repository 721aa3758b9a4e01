"""Build wheels, sdists and zips from the sample source folders, the way packaging tools lay them out."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import tomllib
import zipfile
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"
BUILD_ONLY = {"setup.py", "pyproject.toml", "requirements.txt", "setup.cfg"}


def _files(source: Path) -> list[Path]:
    return sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def metadata(source: Path) -> tuple[str, str, list[str]]:
    """(distribution name, version, requirements) of a sample."""
    manifests = sorted(source.rglob("taylordash-plugin.toml"))
    name, version = source.name.replace("_", "-"), "1.0.0"
    if manifests:
        try:
            data = tomllib.loads(manifests[0].read_text())
            name, version = str(data.get("name", name)), str(data.get("version", version))
        except tomllib.TOMLDecodeError:
            pass
    requirements_file = source / "requirements.txt"
    requirements = requirements_file.read_text().split() if requirements_file.exists() else []
    return name, version, requirements


def _metadata_text(name: str, version: str, requirements: list[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requirements]
    return "\n".join(lines) + "\n"


def build_wheel(source: Path, out: Path) -> Path:
    name, version, requirements = metadata(source)
    dist = re.sub(r"[-.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    entries: dict[str, bytes] = {}
    for path in _files(source):
        relative = path.relative_to(source).as_posix()
        if relative not in BUILD_ONLY:
            entries[relative] = path.read_bytes()
    entries[f"{info}/METADATA"] = _metadata_text(name, version, requirements).encode()
    entries[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for arcname, data in entries.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    entries[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in entries.items():
            zf.writestr(arcname, data)
    return target


def build_sdist(source: Path, out: Path) -> Path:
    name, version, requirements = metadata(source)
    base = f"{re.sub(r'[-.]+', '_', name)}-{version}"
    target = out / f"{base}.tar.gz"
    with tarfile.open(target, "w:gz") as tf:

        def add(arcname: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{base}/{arcname}")
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))

        for path in _files(source):
            add(path.relative_to(source).as_posix(), path.read_bytes())
        add("PKG-INFO", _metadata_text(name, version, requirements).encode())
        if not (source / "pyproject.toml").exists():
            deps = ", ".join(f'"{r}"' for r in requirements)
            add(
                "pyproject.toml",
                f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{deps}]\n'.encode(),
            )
    return target


def build_zip(source: Path, out: Path) -> Path:
    name, version, _ = metadata(source)
    target = out / f"{name}-{version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _files(source):
            zf.write(path, path.relative_to(source).as_posix())
    return target


def build(kind: str, source: Path, out: Path) -> Path:
    """The sample at ``source`` as ``kind`` (``folder``, ``wheel``, ``sdist`` or ``zip``) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        return source
    return {"wheel": build_wheel, "sdist": build_sdist, "zip": build_zip}[kind](source, out)
