"""Scanning from async code: the CPU-heavy work runs in a separate process, so the event loop stays
responsive and a package crafted to crash the parser cannot take the server down."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sandbox.scanner.errors import UnusableInput

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            # spawn: a fresh interpreter, nothing inherited from the server's threads or sockets.
            _pool = ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _reset() -> None:
    """Drop the pool after a timeout or a crash; a worker still busy with a hostile package is killed
    (the executor has no public way to stop a running task)."""
    global _pool
    with _lock:
        if _pool is not None:
            workers = list(getattr(_pool, "_processes", {}).values())
            _pool.shutdown(wait=False, cancel_futures=True)
            for worker in workers:
                if worker.is_alive():
                    worker.kill()
        _pool = None


def _scan_to_dict(path: str, fail_on: str) -> dict[str, Any]:
    from sandbox.scanner.engine import scan
    from sandbox.scanner.findings import Severity

    try:
        return {"report": scan([path], Severity.parse(fail_on)).as_dict()}
    except UnusableInput as exc:
        return {"unusable": str(exc)}


async def scan_async(path: str | Path, fail_on: str = "medium", limit_seconds: float = 300.0) -> dict[str, Any]:
    """Scan one target in the worker process and return the JSON report (``Report.as_dict()``).
    Raises :class:`UnusableInput` for unusable input, :class:`TimeoutError` past ``limit_seconds`` and
    ``RuntimeError`` when the worker died."""
    loop = asyncio.get_running_loop()
    try:
        future = loop.run_in_executor(_executor(), _scan_to_dict, str(path), fail_on)
        outcome = await asyncio.wait_for(future, limit_seconds)
    except BrokenProcessPool as exc:
        _reset()
        raise RuntimeError("the scanner process died while scanning") from exc
    except TimeoutError:
        _reset()
        raise
    if "unusable" in outcome:
        raise UnusableInput(outcome["unusable"])
    return outcome["report"]
