"""Run the real ``taylordash`` console script and server as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.services import free_port

TAYLORDASH = str(Path(sys.executable).parent / "taylordash")


def clean_env(**settings: str) -> dict[str, str]:
    """The current environment without product settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_") or k.startswith(("TD_TEST_", "TD_REQ"))}
    env.update(settings)
    return env


def run(
    *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TAYLORDASH, *args], env=dict(env), capture_output=True, text=True, input=input, timeout=timeout
    )


@contextmanager
def serving(
    env: Mapping[str, str], *args: str, log: Path, ready_path: str = "/health/live", timeout: float = 120
) -> Iterator[str]:
    """Start ``taylordash serve`` on a free port; yield its base URL once ``ready_path`` answers 200
    (within ``timeout`` seconds)."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [TAYLORDASH, "serve", "--port", str(port), *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(base + ready_path, timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout:g} s:\n{log.read_text()}")
            time.sleep(0.05)
        yield base
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
