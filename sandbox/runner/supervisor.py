"""The kernel's side of one sandbox worker: start it, call into it, restart it, stop it.

A :class:`Supervisor` owns one worker process. Calls are serialised (a worker runs one call at a
time); while a call runs, the supervisor answers the worker's ``api`` frames through the ``api``
callback and collects ``violation`` frames. A call that outlives its wall-clock timeout, a frame over
the size cap and a worker that dies are violations too: the process is killed and started again with
capped exponential backoff, and the caller gets a :class:`CallOutcome` saying what happened, never a
hang. The worker is started with an empty environment, so no secret of the kernel's reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from sandbox.runner.kinds import BLOCKED_KINDS
from sandbox.runner.limits import Limits
from sandbox.runner.protocol import ChannelClosed, FrameTooLarge, aread_frame, awrite_frame

log = structlog.get_logger("taylordash.sandbox")

ApiHandler = Callable[[str, dict[str, Any]], Awaitable[Any]]
ViolationSink = Callable[[str, list[dict[str, str]], dict[str, Any]], Awaitable[None]]


def _worker_command() -> tuple[str, ...]:
    """``python -I -S`` with only the folders the worker imports from on its path: skipping ``site``
    (and the package finders it loads) saves a good part of a cold start."""
    import importlib.util

    import sandbox

    restricted = importlib.util.find_spec("RestrictedPython")
    assert restricted is not None and restricted.origin is not None
    paths = [str(Path(sandbox.__file__).resolve().parent.parent), str(Path(restricted.origin).parent.parent)]
    boot = "import sys; sys.path[:0] = sys.argv[1:]; from sandbox.runner.worker import run; run()"
    return (sys.executable, "-I", "-S", "-c", boot, *paths)


WORKER_COMMAND = _worker_command()
WORKER_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


class ApiRefused(Exception):
    """An ``api`` call the manifest's permissions do not cover."""

    def __init__(self, permission: str, message: str) -> None:
        self.permission = permission
        super().__init__(message)


class ApiFailed(Exception):
    """An ``api`` call that could not be completed; its message goes back to the plugin."""


class WorkerUnavailable(Exception):
    """The worker is not running (stopped, or waiting to be restarted)."""


@dataclass
class CallOutcome:
    """What one call into the worker produced."""

    ok: bool
    value: Any = None
    status_code: int = 200
    stdout: str = ""
    violations: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, str] | None = None
    duration_ms: float = 0.0

    @property
    def status(self) -> str:
        """``ok``, ``blocked`` (the sandbox refused something), ``contained`` (a limit stopped the
        call) or ``error`` (the plugin raised)."""
        kinds = {v["kind"] for v in self.violations}
        if kinds & BLOCKED_KINDS:
            return "blocked"
        if kinds:
            return "contained"
        if self.ok:
            return "ok"
        return (self.error or {}).get("kind") if (self.error or {}).get("kind") in ("blocked", "contained") else "error"  # type: ignore[return-value]

    def as_report(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "result": self.value,
            "violations": [{"kind": v["kind"], "detail": v["detail"]} for v in self.violations],
            "stdout": self.stdout,
            "duration_ms": round(self.duration_ms, 3),
            **({"error": self.error} if self.error else {}),
        }


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: a plugin package (``root`` holds the ``entry`` package) or nothing."""

    name: str
    root: Path | None = None
    entry: str | None = None
    limits: Limits = field(default_factory=Limits)


class Supervisor:
    """One sandbox worker and its restarts."""

    def __init__(
        self,
        spec: WorkerSpec,
        api: ApiHandler,
        on_violations: ViolationSink | None = None,
        *,
        backoff_base: float = 0.2,
        backoff_cap: float = 30.0,
        start_timeout: float = 15.0,
    ) -> None:
        self.spec = spec
        self.api = api
        self.on_violations = on_violations
        self.backoff_base, self.backoff_cap, self.start_timeout = backoff_base, backoff_cap, start_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.contributions: dict[str, Any] = {}
        self.load_error: dict[str, str] | None = None
        self.applied_limits: dict[str, str] = {}
        self.restarts = 0
        self.failures_in_a_row = 0
        self.cold_start_ms = 0.0
        self.stderr_tail = b""
        self._lock = asyncio.Lock()
        self._restart_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()  # one per worker process, until its stderr ends
        self._stopping = False
        self._started_at = 0.0
        self._next_id = 0

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the worker and wait until it has loaded the plugin (``ready``)."""
        self._stopping = False
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *WORKER_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=WORKER_ENV,
            cwd=str(self.spec.root or "/"),
            start_new_session=True,
            limit=2**20,
        )
        init: dict[str, Any] = {"op": "init", "limits": self.spec.limits.as_dict()}
        if self.spec.root is not None and self.spec.entry:
            init["package"] = {"root": str(self.spec.root), "entry": self.spec.entry}
        violations: list[dict[str, str]] = []
        try:
            assert process.stdin is not None and process.stdout is not None
            await awrite_frame(process.stdin, init)
            ready = await asyncio.wait_for(self._until_ready(process, violations), self.start_timeout)
        except (TimeoutError, ChannelClosed, FrameTooLarge, ValueError) as exc:
            await self._kill(process)
            await self._report([*violations, {"kind": "crash", "detail": f"worker did not start: {exc!r}"}], {})
            raise WorkerUnavailable(f"sandbox worker for {self.name!r} did not start: {exc!r}") from None
        self.cold_start_ms = (time.perf_counter() - started) * 1000
        if self._stopping:  # stop() ran while the worker was starting
            await self._kill(process)
            raise WorkerUnavailable(f"sandbox worker for {self.name!r} was stopped while starting")
        self.process = process  # only now: calls wait for a worker that has loaded its plugin
        self.contributions = ready.get("contributions") or {}
        self.load_error = ready.get("error")
        self.applied_limits = ready.get("limits") or {}
        self._started_at = time.monotonic()
        self._watch_task = asyncio.create_task(self._watch_stderr(process))
        self._watchers.add(self._watch_task)
        self._watch_task.add_done_callback(self._watchers.discard)
        if violations:
            await self._report(violations, {"phase": "load"})
        log.info("sandbox.worker_started", plugin=self.name, pid=process.pid, ms=round(self.cold_start_ms, 1))

    async def _until_ready(
        self, process: asyncio.subprocess.Process, violations: list[dict[str, str]]
    ) -> dict[str, Any]:
        assert process.stdout is not None
        while True:
            frame = await aread_frame(process.stdout, self._max_frame)
            if frame.get("op") == "violation":
                violations.append({"kind": str(frame.get("kind")), "detail": str(frame.get("detail"))})
            elif frame.get("op") == "ready":
                return frame

    @property
    def _max_frame(self) -> int:
        return self.spec.limits.max_output_bytes * 2 + 65536

    async def _watch_stderr(self, process: asyncio.subprocess.Process) -> None:
        """Keep the last few KiB of the worker's stderr (crash context) and drain the pipe."""
        assert process.stderr is not None
        with contextlib.suppress(Exception):
            while chunk := await process.stderr.read(4096):
                self.stderr_tail = (self.stderr_tail + chunk)[-4096:]
        if not self._stopping and process is self.process:
            await self._crashed(process, {"phase": "idle"})

    async def stop(self) -> None:
        """Stop the worker (asking first, then killing) and cancel any pending restart."""
        self._stopping = True
        if self._restart_task is not None:
            self._restart_task.cancel()
            self._restart_task = None
        process = self.process
        if process is not None:
            if process.returncode is None and process.stdin is not None:
                with contextlib.suppress(Exception):
                    await awrite_frame(process.stdin, {"op": "stop"})
                    process.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 2.0)
            await self._kill(process)
        # Each watcher ends at its dead worker's end of stderr; letting them get there (rather than
        # cancelling them) lets asyncio close the pipes before the loop goes away.
        for watcher in list(self._watchers):
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(watcher), 2.0)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        await asyncio.sleep(0)
        self.process = None

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5.0)
        # Close the pipes now, while the loop runs: left to the garbage collector, a transport of a
        # dead worker may be finalised after its loop has closed.
        transport = getattr(process, "_transport", None)
        if transport is not None and process.returncode is not None:
            transport.close()

    async def _crashed(self, process: asyncio.subprocess.Process, context: dict[str, Any]) -> None:
        if process is not self.process or self._stopping or self._lock.locked():
            return  # a call in progress sees the exit itself and reports it
        self.process = None
        await self._kill(process)
        code = process.returncode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        detail = f"worker exited unexpectedly ({why})"
        stderr = self.stderr_tail.decode(errors="replace")[-1000:]
        await self._report([{"kind": "crash", "detail": detail}], {**context, "stderr": stderr})
        self.schedule_restart()

    def schedule_restart(self) -> None:
        """Start the worker again after a backoff that doubles with each failure in a row."""
        if self._stopping or (self._restart_task is not None and not self._restart_task.done()):
            return
        if time.monotonic() - self._started_at > 60:
            self.failures_in_a_row = 0
        delay = min(self.backoff_cap, self.backoff_base * (2**self.failures_in_a_row))
        self.failures_in_a_row += 1
        self.process = None
        self._restart_task = asyncio.create_task(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping:
            return
        try:
            await self.start()
            self.restarts += 1
        except WorkerUnavailable:
            self._restart_task = None
            self.schedule_restart()
            return
        self._restart_task = None

    async def wait_running(self, timeout: float) -> bool:  # noqa: ASYNC109 - polls the restart
        """Wait until the worker is up (after a restart); ``False`` when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not self.running or self._restart_task is not None:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def _report(self, violations: list[dict[str, str]], context: dict[str, Any]) -> None:
        if self.on_violations is not None and violations:
            try:
                await self.on_violations(self.name, violations, context)
            except Exception:
                log.exception("sandbox.violation_report_failed", plugin=self.name)

    # -- calls --------------------------------------------------------------------------------------
    async def call(
        self,
        kind: str,
        target: str,
        args: dict[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109 - kills the worker
    ) -> CallOutcome:
        """Run one call in the worker. Never raises for what the plugin does; raises
        :class:`WorkerUnavailable` when there is no worker to call."""
        async with self._lock:
            process = self.process
            if process is None or process.returncode is not None:
                raise WorkerUnavailable(f"the sandbox worker of {self.name!r} is not running")
            self._next_id += 1
            message = {"op": "call", "id": self._next_id, "kind": kind, "target": target, "args": args}
            outcome = CallOutcome(ok=False)
            unreported: list[dict[str, str]] = []
            started = time.perf_counter()
            limit = timeout if timeout is not None else self.spec.limits.call_timeout
            try:
                assert process.stdin is not None
                await awrite_frame(process.stdin, message)
                await asyncio.wait_for(self._converse(process, outcome), limit)
            except TimeoutError:
                outcome.violations.append({"kind": "timeout", "detail": f"call {kind} {target!r} ran past {limit}s"})
                outcome.error = {"kind": "contained", "type": "Timeout", "message": f"no answer within {limit}s"}
                await self._fail(process)
            except FrameTooLarge as exc:
                outcome.violations.append({"kind": "output", "detail": str(exc)})
                outcome.error = {"kind": "contained", "type": "OutputLimit", "message": str(exc)}
                await self._fail(process)
            except (ChannelClosed, ValueError) as exc:
                owned = process is self.process
                code = await self._exit_code(process)
                why = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                outcome.error = {"kind": "contained", "type": "WorkerCrashed", "message": why}
                crash = {"kind": "crash", "detail": f"worker died during the call ({why}): {exc}"}
                outcome.violations.append(crash)
                if owned:
                    await self._fail(process)
                else:  # the stderr watcher saw the exit first and has reported it
                    unreported = [crash]
            outcome.duration_ms = (time.perf_counter() - started) * 1000
        report = [v for v in outcome.violations if not any(v is u for u in unreported)]
        if report:
            context: dict[str, Any] = {"call": kind, "target": target}
            if isinstance(args.get("params"), dict):
                context["params"] = args["params"]
            await self._report(report, context)
        return outcome

    async def _fail(self, process: asyncio.subprocess.Process) -> None:
        """Kill a worker that misbehaved during a call and schedule its restart."""
        if process is self.process:
            self.process = None
            await self._kill(process)
            self.schedule_restart()
        else:
            await self._kill(process)

    async def _exit_code(self, process: asyncio.subprocess.Process) -> int | None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 1.0)
        return process.returncode

    async def _converse(self, process: asyncio.subprocess.Process, outcome: CallOutcome) -> None:
        assert process.stdout is not None and process.stdin is not None
        while True:
            frame = await aread_frame(process.stdout, self._max_frame)
            op = frame.get("op")
            if op == "violation":
                outcome.violations.append({"kind": str(frame.get("kind"))[:50], "detail": str(frame.get("detail"))})
            elif op == "api":
                reply = await self._answer_api(frame, outcome)
                await awrite_frame(process.stdin, reply)
            elif op == "result":
                outcome.ok = bool(frame.get("ok"))
                outcome.value = frame.get("value")
                outcome.status_code = int(frame.get("status") or 200)
                outcome.stdout = str(frame.get("stdout") or "")
                outcome.error = frame.get("error")
                self.failures_in_a_row = 0
                return

    async def _answer_api(self, frame: dict[str, Any], outcome: CallOutcome) -> dict[str, Any]:
        reply: dict[str, Any] = {"op": "api_result", "id": frame.get("id")}
        method = str(frame.get("method"))
        try:
            args = frame.get("args") or {}
            if not isinstance(args, dict):
                raise ApiFailed("arguments must be keyword arguments")
            reply.update(ok=True, value=await self.api(method, args))
        except ApiRefused as exc:
            outcome.violations.append({"kind": "permission", "detail": f"api.{method}: {exc}"})
            reply.update(ok=False, error={"kind": "permission", "message": str(exc)})
        except ApiFailed as exc:
            reply.update(ok=False, error={"kind": "error", "message": str(exc)})
        except Exception as exc:
            log.warning("sandbox.api_failed", plugin=self.name, method=method, error=repr(exc))
            reply.update(ok=False, error={"kind": "error", "message": f"{type(exc).__name__}: {exc}"[:500]})
        return reply
