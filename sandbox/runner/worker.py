"""The sandbox worker process: ``python -I -m sandbox.runner.worker`` (the kernel starts it with
``-I -S`` and an explicit path, see ``supervisor.WORKER_COMMAND``).

The kernel starts one per sandboxed plugin and talks to it in length-prefixed JSON frames over the
child's stdin and stdout (:mod:`sandbox.runner.protocol`). The first frame (``init``) carries the
limits and what to load. The worker applies the OS limits, then loads the plugin's package under
RestrictedPython, answers ``ready`` with what the plugin contributes, and serves ``call`` frames one at
a time. During a call the plugin's ``api`` calls become ``api`` frames answered by the kernel; each
refusal the sandbox makes is sent at once as a ``violation`` frame, so a later crash cannot lose it.

File descriptors 0 and 1 are pointed at /dev/null once the frames have private copies, so nothing a
plugin manages to write can corrupt the channel.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

from sandbox.runner import limits as oslimits
from sandbox.runner.protocol import ChannelClosed, read_frame, write_frame
from sandbox.runner.restricted import (
    Environment,
    LimitExceeded,
    ModuleFacade,
    OutputLimit,
    Recorder,
    SandboxViolation,
)
from sdk import sandbox as markers


class CpuExceeded(LimitExceeded):
    """The call used its CPU budget."""


class Channel:
    """The worker's end of the frame pipes."""

    def __init__(self, incoming: BinaryIO, outgoing: BinaryIO, max_frame: int) -> None:
        self.incoming, self.outgoing, self.max_frame = incoming, outgoing, max_frame
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        write_frame(self.outgoing, message)

    def receive(self) -> dict[str, Any]:
        return read_frame(self.incoming, self.max_frame)

    def api(self, method: str, args: dict[str, Any]) -> Any:
        self.next_id += 1
        self.send({"op": "api", "id": self.next_id, "method": method, "args": args})
        reply = self.receive()
        if reply.get("op") != "api_result" or reply.get("id") != self.next_id:
            raise ChannelClosed(f"unexpected frame {reply.get('op')!r} while waiting for an api result")
        if reply.get("ok"):
            return reply.get("value")
        error = reply.get("error") or {}
        if error.get("kind") == "permission":
            raise markers.PermissionDenied(error.get("message", "permission refused"))
        raise markers.ApiError(error.get("message", "the api call failed"))


class Namespace:
    """One group of ``api`` methods, e.g. ``api.projects``; every public name is an RPC method."""

    def __init__(self, channel: Channel, group: str, methods: dict[str, tuple[str, ...]]) -> None:
        for method, positional in methods.items():
            object.__setattr__(self, method, self._bind(channel, f"{group}.{method}", positional))

    @staticmethod
    def _bind(channel: Channel, qualified: str, positional: tuple[str, ...]) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if len(args) > len(positional):
                raise TypeError(f"api.{qualified}() takes at most {len(positional)} positional arguments")
            for name, value in zip(positional, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"api.{qualified}() got two values for {name!r}")
                kwargs[name] = value
            return channel.api(qualified, _plain(kwargs))

        call.__name__ = qualified.rsplit(".", 1)[-1]
        return call

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the api is read-only")


API_METHODS: dict[str, dict[str, tuple[str, ...]]] = {
    "projects": {"list": (), "get": ("id",), "create": ()},
    "tasks": {"list": ("project_id",), "update": ("id", "changes", "version")},
    "events": {"publish": ("topic", "payload", "subject_id")},
    "kv": {"get": ("key", "default"), "set": ("key", "value"), "delete": ("key",), "keys": ("prefix",)},
    "config": {"get": ()},
}
"""Groups and methods of the ``api`` object, with the arguments each takes by position
(documented in :mod:`sdk.api`)."""


class Api:
    """The capability object plugin code receives as the global ``api``."""

    def __init__(self, channel: Channel) -> None:
        for group, methods in API_METHODS.items():
            object.__setattr__(self, group, Namespace(channel, group, methods))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the api is read-only")


def _plain(value: Any) -> Any:
    """Round-trip through JSON: only data crosses the boundary, never objects."""
    return json.loads(json.dumps(value, default=str))


class Worker:
    def __init__(self, channel: Channel, init: dict[str, Any]) -> None:
        self.channel = channel
        self.limits = oslimits.Limits.from_dict(init.get("limits", {}))
        self.recorder = Recorder(emit=self._emit_violation)
        package = init.get("package")
        self.env = Environment(
            self.recorder,
            self.limits.max_output_bytes,
            self.limits.regex_seconds,
            ModuleFacade("sdk", dict(markers.PUBLIC)),
            package_root=Path(package["root"]) if package else None,
            package_name=package["entry"].split(".")[0] if package else None,
            extra_globals={"api": Api(channel)},
        )
        self.entry = package["entry"] if package else None
        self.contributions = markers.Contributions()

    def _emit_violation(self, kind: str, detail: str) -> None:
        try:
            self.channel.send({"op": "violation", "kind": kind, "detail": detail})
        except (OSError, ChannelClosed):
            pass

    # -- loading --------------------------------------------------------------------------------------
    def load(self) -> dict[str, Any]:
        markers.reset()
        error = None
        if self.entry:
            try:
                self.env.import_(self.entry, fromlist=("x",))
            except BaseException as exc:
                error = self._classify(exc)
        self.contributions = markers.collected()
        return {"op": "ready", "contributions": self.contributions.describe(), "error": error}

    # -- calls ----------------------------------------------------------------------------------------
    def serve(self) -> None:
        while True:
            try:
                message = self.channel.receive()
            except ChannelClosed:
                return
            op = message.get("op")
            if op == "stop":
                return
            if op == "call":
                try:
                    reply = self.call(message)
                except MemoryError:
                    self.recorder.note("memory", f"memory limit of {self.limits.memory_mb} MB reached")
                    error = {"kind": "contained", "type": "MemoryError", "message": "out of memory"}
                    reply = {"op": "result", "id": message.get("id"), "ok": False, "stdout": "", "error": error}
                self.channel.send(reply)

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        self.env.printer.take()
        oslimits.arm_cpu_budget(self.limits.cpu_seconds_per_call)
        reply: dict[str, Any] = {"op": "result", "id": message.get("id")}
        try:
            value = self._dispatch(message.get("kind", ""), message.get("target", ""), message.get("args") or {})
            status = 200
            if isinstance(value, markers.Response):
                value, status = value.body, value.status
            encoded = json.dumps(value, default=str)
            del value
            if len(encoded) > self.limits.max_output_bytes:
                self.recorder.note("output", f"result of {len(encoded)} bytes exceeds {self.limits.max_output_bytes}")
                raise OutputLimit("result too large")
            reply.update(ok=True, value=json.loads(encoded), status=status)
        except BaseException as exc:  # every failure becomes a result frame
            reply.update(ok=False, error=self._classify(exc))
        finally:
            encoded = ""
        stdout = self.env.printer.take()
        reply["stdout"] = stdout[: self.limits.max_output_bytes // 2]
        reply["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return reply

    def _dispatch(self, kind: str, target: str, args: dict[str, Any]) -> Any:
        if kind == "route":
            _, _, _, handler = self.contributions.routes[target]
            return handler(args)
        if kind == "event":
            _, handler = self.contributions.events[target]
            return handler(args)
        if kind == "snippet":
            namespace = self.env.run(args["source"], args.get("filename", "<snippet>"))
            if namespace is None:
                raise SandboxViolation("the snippet uses syntax the sandbox refuses")
            return namespace.get("result")
        raise ValueError(f"unknown call kind {kind!r}")

    def _classify(self, exc: BaseException) -> dict[str, str]:
        kind = "error"
        if isinstance(exc, MemoryError):
            self.recorder.note("memory", f"memory limit of {self.limits.memory_mb} MB reached")
            kind = "contained"
        elif isinstance(exc, RecursionError):
            self.recorder.note("recursion", f"recursion deeper than {self.limits.recursion} frames")
            kind = "contained"
        elif isinstance(exc, CpuExceeded):
            self.recorder.note("cpu", f"CPU budget of {self.limits.cpu_seconds_per_call}s per call used up")
            kind = "contained"
        elif isinstance(exc, LimitExceeded):
            if "regular expression" in str(exc):
                self.recorder.note("cpu", str(exc))
            kind = "contained"
        elif isinstance(exc, SandboxViolation | markers.PermissionDenied):
            kind = "blocked"
        elif isinstance(exc, ChannelClosed):
            raise exc
        message = str(exc)[:2000] or type(exc).__name__
        return {"kind": kind, "type": type(exc).__name__, "message": message}


def _on_sigxcpu(signum: int, frame: Any) -> None:
    raise CpuExceeded("CPU time limit reached")


def main() -> None:
    incoming = os.fdopen(os.dup(0), "rb")
    outgoing = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    channel = Channel(incoming, outgoing, 64 * 1024 * 1024)
    try:
        init = channel.receive()
    except ChannelClosed:
        return
    worker = Worker(channel, init)
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    applied = oslimits.apply(worker.limits)
    channel.max_frame = max(worker.limits.max_output_bytes * 2, 1024 * 1024)
    ready = worker.load()
    ready["limits"] = applied
    channel.send(ready)
    worker.serve()


def run() -> None:
    """Entry point: serve until the kernel closes the pipe or asks the worker to stop."""
    try:
        main()
    except ChannelClosed:
        sys.exit(0)


if __name__ == "__main__":
    run()
