"""Operating-system limits a worker applies to itself before it loads any plugin code.

``apply`` runs first thing in the worker process. Each limit is set with ``setrlimit`` so the kernel
enforces it even against native code: address space, CPU seconds, open files, no new processes, no
file writes. The network is cut twice: a fresh network namespace when the kernel lets an unprivileged
process make one (only a loopback that is down), and in any case the socket modules are unloaded and
made unimportable.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
from dataclasses import asdict, dataclass
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource caps of one worker. Defaults suit a plugin answering small requests."""

    memory_mb: int = 256
    """Address-space cap (RLIMIT_AS); Python itself needs about 40 MB of it."""
    cpu_seconds_per_call: float = 5.0
    """CPU time one call may use before the worker interrupts it."""
    cpu_seconds_total: int = 3600
    """Hard CPU cap over the worker's life: the kernel kills the process past it."""
    open_files: int = 16
    recursion: int = 400
    """Frames plugin code may stack on top of the worker's own."""
    call_timeout: float = 10.0
    """Wall-clock seconds the kernel waits for one call before it kills and restarts the worker."""
    max_output_bytes: int = 1024 * 1024
    """Largest result or captured ``print`` output of one call."""
    regex_seconds: float = 1.0
    """Time one regular-expression operation may take."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _set(which: int, soft: int, hard: int | None = None) -> None:
    _, current_hard = resource.getrlimit(which)
    hard = soft if hard is None else hard
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def _new_network_namespace() -> str:
    """Move into a network namespace of our own; returns how (or why not)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for flags, label in ((CLONE_NEWNET, "netns"), (CLONE_NEWUSER | CLONE_NEWNET, "userns+netns")):
        if libc.unshare(flags) == 0:
            return label
    return f"unavailable ({os.strerror(ctypes.get_errno())})"


def cut_network() -> str:
    how = _new_network_namespace()
    for name in ("socket", "_socket", "ssl", "_ssl", "select", "selectors", "asyncio"):
        sys.modules.pop(name, None)
        sys.modules[name] = None  # type: ignore[assignment]  # import now raises ImportError
    return how


def apply(limits: Limits) -> dict[str, str]:
    """Apply every limit to the current process; returns what was done, for the worker's ready frame."""
    network = cut_network()
    memory = limits.memory_mb * 1024 * 1024
    _set(resource.RLIMIT_AS, memory)
    _set(resource.RLIMIT_CPU, int(limits.cpu_seconds_total), int(limits.cpu_seconds_total) + 1)
    _set(resource.RLIMIT_NOFILE, limits.open_files)
    _set(resource.RLIMIT_NPROC, 0)
    _set(resource.RLIMIT_FSIZE, 0)
    _set(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails instead of killing
    sys.setrecursionlimit(limits.recursion + 100)
    return {"network": network, "memory_mb": str(limits.memory_mb), "nproc": "0", "fsize": "0"}


def arm_cpu_budget(seconds: float) -> None:
    """Let the current call use ``seconds`` more CPU time before SIGXCPU interrupts it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    wanted = int(used + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (wanted, hard))
