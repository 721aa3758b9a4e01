"""One managed MCP server: its client session, its state, and the task that keeps it up.

States: ``stopped`` → ``starting`` → ``ready``; a failed ping makes a ready server ``degraded`` (a
good ping makes it ``ready`` again); ``failures_before_restart`` failed pings in a row, a child that
exits, or a start that fails make it ``failed``, and it is started again after a backoff that doubles
up to ``restart_backoff_max_seconds``. :meth:`Connection.stop` ends in ``stopped`` from any state.

stdio servers run as child processes in their own process group through the SDK's ``stdio_client``,
which stops them the way the MCP specification asks: stdin closed, 2 s, SIGTERM to the group, SIGKILL.
The child gets only the SDK's minimal environment plus the server's configured ``env``; its stderr is
read line by line into the log (secrets masked) and a short tail kept for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import mcp_types as types
import psutil
import structlog
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from builtin_plugins.mcp.config import McpSettings
from builtin_plugins.mcp.secrets import scrub
from builtin_plugins.mcp.spec import NotConnected, ServerGone, ServerSpec

log = structlog.get_logger("taylordash.mcp")

INSTANCE_ENV = "TAYLORDASH_MCP_INSTANCE"
"""Set in each child's environment so the supervisor can find the child's pid among its own children."""
LIVENESS_SECONDS = 0.25

Transition = Callable[[str, str, str, dict[str, Any]], Awaitable[None]]


class Connection:
    """Supervises one server. Every state change is reported through ``on_transition``."""

    def __init__(self, spec: ServerSpec, settings: McpSettings, on_transition: Transition) -> None:
        self.spec = spec
        self.settings = settings
        self.on_transition = on_transition
        self.state = "stopped"
        self.session: ClientSession | None = None
        self.tools: list[types.Tool] = []
        self.server_info: dict[str, Any] | None = None
        self.pid: int | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.stderr: deque[str] = deque(maxlen=settings.stderr_lines)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()

    # -- control -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start supervising (no-op when already running)."""
        if self.running:
            return
        self._stopping = asyncio.Event()
        # A context of its own: the request that started it must not lend its trace id to every event.
        self._task = asyncio.create_task(
            self._supervise(), name=f"mcp-server-{self.spec.name}", context=contextvars.Context()
        )

    async def stop(self) -> None:
        """Stop the server and supervision; ends ``stopped``."""
        task = self._task
        if task is None:
            return
        self._stopping.set()
        try:
            # The SDK's own shutdown of a stdio child takes up to ~6 s (2 s + SIGTERM 2 s + reap 2 s).
            await asyncio.wait_for(asyncio.shield(task), self.settings.start_timeout_seconds + 10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        await self._set("stopped", "stop requested")

    async def wait_for(self, states: set[str], seconds: float) -> str:
        """Wait until the state is one of ``states``; return it (``TimeoutError`` after ``seconds``)."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: self.state in states)
            return self.state

    async def call_tool(self, tool: str, arguments: dict[str, Any], seconds: float) -> types.CallToolResult:
        session = self.session
        if session is None or self.state not in ("ready", "degraded"):
            raise NotConnected(f"MCP server {self.spec.name!r} is {self.state}")
        return await session.call_tool(tool, arguments, read_timeout_seconds=seconds)

    # -- supervision -------------------------------------------------------------------------------
    async def _set(self, state: str, reason: str, **details: Any) -> None:
        if state == self.state:
            return
        previous, self.state = self.state, state
        log.info("mcp.server_state", server=self.spec.name, previous=previous, state=state, reason=reason)
        async with self._changed:
            self._changed.notify_all()
        try:
            await self.on_transition(self.spec.name, previous, state, {"reason": reason, **details})
        except Exception as exc:  # a lost event must not take the supervisor down
            log.error("mcp.transition_not_recorded", server=self.spec.name, state=state, error=repr(exc))

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            await self._set("starting", "restart" if attempt else "start", attempt=attempt)
            started = time.monotonic()
            try:
                await self._serve_once()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # ExceptionGroups from the SDK's task groups included
                self.last_error = _describe(exc, self.spec.secrets)
            else:
                if self._stopping.is_set():
                    break
                self.last_error = "the connection ended"
            finally:
                self.session, self.pid, self.tools = None, None, []
            if self._stopping.is_set():
                break
            if time.monotonic() - started >= self.settings.restart_backoff_max_seconds:
                attempt = 0  # it ran long enough: the next failure starts the backoff afresh
            delay = min(self.settings.restart_backoff_seconds * 2**attempt, self.settings.restart_backoff_max_seconds)
            await self._set("failed", self.last_error or "failed", retry_in_seconds=delay, restarts=self.restarts)
            attempt += 1
            self.restarts += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _serve_once(self) -> None:
        async with AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(self._transport())
            session = await stack.enter_async_context(
                ClientSession(read, write, read_timeout_seconds=self.settings.start_timeout_seconds)
            )
            result = await session.initialize()
            self.server_info = result.server_info.model_dump(mode="json", exclude_none=True)
            self.tools = await _all_tools(session)
            self.session = session
            await self._set("ready", "initialized", pid=self.pid, tools=len(self.tools))
            await self._watch(session)

    @asynccontextmanager
    async def _transport(self) -> AsyncIterator[Any]:
        if self.spec.transport == "http":
            client = create_mcp_http_client(headers=dict(self.spec.headers) or None)
            async with client, streamable_http_client(str(self.spec.url), http_client=client) as streams:
                yield streams
            return
        marker = uuid.uuid4().hex
        params = StdioServerParameters(
            command=str(self.spec.command), args=list(self.spec.args), env={**self.spec.env, INSTANCE_ENV: marker}
        )
        read_fd, write_fd = os.pipe()
        errlog = os.fdopen(write_fd, "w")
        reader: asyncio.Task[None] | None = None
        try:
            async with stdio_client(params, errlog=errlog) as streams:
                # The child holds its own copy of the pipe's write end: EOF comes when it exits.
                errlog.close()
                reader = asyncio.create_task(self._read_stderr(read_fd))
                read_fd = -1
                self.pid = _child_with_marker(marker)
                yield streams
        finally:
            errlog.close()
            if read_fd >= 0:
                os.close(read_fd)
            if reader is not None:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(reader), 1.0)
                if not reader.done():
                    reader.cancel()

    async def _read_stderr(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=65536)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb", buffering=0)
        )
        try:
            while True:
                try:
                    raw = await stream.readline()
                except ValueError:  # a line longer than the limit: keep its start
                    raw = await stream.read(65536)
                if not raw:
                    return
                line = scrub(raw.decode("utf-8", "replace").rstrip("\n"), self.spec.secrets)
                self.stderr.append(line)
                log.info("mcp.server_stderr", server=self.spec.name, line=line)
        finally:
            transport.close()

    async def _watch(self, session: ClientSession) -> None:
        """Return when asked to stop; raise :class:`ServerGone` when the server is lost."""
        failures = 0
        next_ping = time.monotonic() + self.settings.ping_interval_seconds
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), LIVENESS_SECONDS)
            if self._stopping.is_set():
                return
            if self.pid is not None and not _alive(self.pid):
                raise ServerGone(f"the server process {self.pid} exited")
            if time.monotonic() < next_ping:
                continue
            next_ping = time.monotonic() + self.settings.ping_interval_seconds
            try:
                await session.send_request(
                    types.PingRequest(),
                    types.EmptyResult,
                    request_read_timeout_seconds=self.settings.ping_timeout_seconds,
                )
            except Exception as exc:
                failures += 1
                reason = f"ping failed ({failures} in a row): {_describe(exc, self.spec.secrets)}"
                if failures >= self.settings.failures_before_restart:
                    raise ServerGone(reason) from None
                await self._set("degraded", reason, failures=failures)
                continue
            if failures:
                failures = 0
                await self._set("ready", "ping answered")


async def _all_tools(session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _child_with_marker(marker: str) -> int | None:
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.environ().get(INSTANCE_ENV) == marker:
                return child.pid
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _describe(exc: BaseException, secrets: list[str]) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return scrub(f"{type(exc).__name__}: {text}"[:500], secrets)
