"""Upload and download a large file through a real server subprocess, sampling the server's RSS."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from tests.support.services import free_port

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
BOUNDARY = "tdbigfileboundary"


@dataclass
class Transfer:
    """One measured transfer: bytes, seconds, and the server's RSS before and at its peak."""

    size: int
    seconds: float
    rss_before: int
    rss_peak: int

    @property
    def rss_growth(self) -> int:
        return self.rss_peak - self.rss_before

    @property
    def mb_per_second(self) -> float:
        return self.size / MB / self.seconds

    def describe(self, what: str) -> str:
        return (
            f"{what}: {self.size / MB:.0f} MB in {self.seconds:.2f} s ({self.mb_per_second:.0f} MB/s), "
            f"server RSS {self.rss_before / MB:.1f} → peak {self.rss_peak / MB:.1f} MB "
            f"(+{self.rss_growth / MB:.1f} MB)"
        )


class RssSampler:
    """Samples a process's resident set size every few milliseconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[tuple[str, int]]:
    """``uvicorn`` serving :mod:`tests.storage.server_app` on a free port: ``(base_url, pid)``."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "tests.storage.server_app:create",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(base + "/health/live", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in 30 s:\n{log.read_text()}")
            time.sleep(0.05)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pattern_block() -> bytes:
    """1 MB of incompressible-looking bytes (the same each call)."""
    return hashlib.shake_256(b"taylordash").digest(MB)


def multipart_body(size: int, filename: str, digest: hashlib._Hash) -> Iterator[bytes]:
    """A multipart/form-data body with one ``file`` part of ``size`` bytes, generated lazily."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    block = pattern_block()
    sent = 0
    while sent < size:
        piece = block[: min(MB, size - sent)]
        digest.update(piece)
        sent += len(piece)
        yield piece
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_and_download(base: str, pid: int, size: int) -> tuple[Transfer, Transfer]:
    """Upload ``size`` bytes as a task attachment and download them again, measuring both."""
    headers = {"x-test-role": "admin"}
    task = uuid.uuid4()
    url = f"{base}/api/v1/tasks/{task}/attachments"
    with httpx.Client(timeout=300) as client:
        warm = client.post(url, files={"file": ("warm.txt", b"warm-up")}, headers=headers)
        warm.raise_for_status()
        client.get(f"{url}/{warm.json()['id']}", headers=headers).raise_for_status()
        time.sleep(0.3)
        digest = hashlib.sha256()
        with RssSampler(pid) as up:
            before_up = up.peak
            started = time.perf_counter()
            response = client.post(
                url,
                content=multipart_body(size, "big.bin", digest),
                headers={**headers, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
            )
            up_seconds = time.perf_counter() - started
        response.raise_for_status()
        meta = response.json()
        if meta["size"] != size or meta["sha256"] != digest.hexdigest():
            raise AssertionError(f"stored {meta['size']} bytes with sha256 {meta['sha256']}")
        time.sleep(0.3)
        check = hashlib.sha256()
        with RssSampler(pid) as down:
            before_down = down.peak
            started = time.perf_counter()
            received = 0
            with client.stream("GET", f"{url}/{meta['id']}", headers=headers) as stream:
                stream.raise_for_status()
                for chunk in stream.iter_bytes(MB):
                    check.update(chunk)
                    received += len(chunk)
            down_seconds = time.perf_counter() - started
        if received != size or check.hexdigest() != meta["sha256"]:
            raise AssertionError("downloaded bytes differ")
    return (
        Transfer(size, up_seconds, before_up, up.peak),
        Transfer(size, down_seconds, before_down, down.peak),
    )


def server_env(data_dir: Path, storage_url: str, max_upload: int) -> dict[str, str]:
    """Environment for :func:`server`: embedded SQLite in ``data_dir``, the given storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
    env.update(
        TD_DATA_DIR=str(data_dir),
        TD_STORAGE_URL=storage_url,
        TD_LOG_LEVEL="warning",
        TD_PLUGINS__STORAGE__MAX_UPLOAD_BYTES=str(max_upload),
        PYTHONPATH=str(ROOT),
    )
    return env
