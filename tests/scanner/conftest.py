"""Helpers for running the real `taylordash scan` command."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

TAYLORDASH = str(Path(sys.executable).parent / "taylordash")


@pytest.fixture
def run_scan() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `taylordash scan ARGS…` as a subprocess (no TTY), returning the completed process."""

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TAYLORDASH, "scan", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )

    return run
