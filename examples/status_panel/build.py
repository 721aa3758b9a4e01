"""Build the archive the plugin registry accepts: ``python build.py [output folder]`` writes
``status-panel-1.0.0.zip`` with the manifest, the entry module and the panel files."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONTENTS = ("taylordash-plugin.toml", "status_panel", "panels")


def build(out: Path) -> Path:
    """Write the archive into ``out`` and return its path."""
    target = out / "status-panel-1.0.0.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in CONTENTS:
            path = HERE / name
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                if "__pycache__" not in file.parts:
                    archive.write(file, f"status-panel/{file.relative_to(HERE).as_posix()}")
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))
