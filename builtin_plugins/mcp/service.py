"""The MCP manager: the registry of servers, their supervised connections, the tool catalog and calls.

Every state change of a server is an event ``mcp.<state>`` (topic ``tracker/events/mcp/<state>``)
written through the outbox with the server's new state; registry changes are ``mcp.server_created``,
``mcp.server_updated``, ``mcp.server_deleted``. Administrative actions and every tool call leave an
audit entry through the auth plugin's audit service when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jsonschema
import structlog
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from builtin_plugins.mcp.config import McpSettings
from builtin_plugins.mcp.models import McpServerRow, utcnow
from builtin_plugins.mcp.schemas import (
    CallOut,
    ImportDoc,
    ImportResult,
    ServerEntry,
    ServerIn,
    ServerOut,
    ServerPatch,
    ToolOut,
)
from builtin_plugins.mcp.secrets import MASK, SecretBox, masked
from builtin_plugins.mcp.spec import STATES, NotConnected, ServerSpec
from sdk import Conflict, Event, Forbidden, NotFound, Principal, ProblemError, ValidationFailed

if TYPE_CHECKING:
    from builtin_plugins.mcp.connection import Connection

log = structlog.get_logger("taylordash.mcp")
SYSTEM = Principal(id="mcp", role="admin", name="mcp manager", kind="system")


class ServerNotReady(Conflict):
    slug, title = "mcp-server-not-ready", "MCP Server Not Ready"


class ToolNotAllowed(Forbidden):
    slug, title = "mcp-tool-not-allowed", "MCP Tool Not Allowed"


class ToolCallFailed(ProblemError):
    status, slug, title = 502, "mcp-call-failed", "MCP Call Failed"


class ToolTimeout(ProblemError):
    status, slug, title = 504, "mcp-call-timeout", "MCP Call Timed Out"


class ToolMetrics:
    """Calls, errors and latency per tool."""

    def __init__(self, registry: Any) -> None:
        self.calls = Counter(
            "taylordash_mcp_tool_calls", "Calls of managed MCP tools", ["server", "tool", "outcome"], registry=registry
        )
        self.errors = Counter(
            "taylordash_mcp_tool_errors", "Failed calls of managed MCP tools", ["server", "tool"], registry=registry
        )
        self.seconds = Histogram(
            "taylordash_mcp_tool_call_duration_seconds",
            "Latency of managed MCP tool calls",
            ["server", "tool"],
            registry=registry,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.servers = Gauge(
            "taylordash_mcp_servers",
            "MCP servers this instance supervises, by state",
            ["state"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    def count(self, connections: Mapping[str, Connection]) -> None:
        states = [conn.state for conn in connections.values()]
        for state in STATES:
            self.servers.labels(state).set(states.count(state))


class McpManager:
    """One per kernel: ``kernel.services["mcp"]``."""

    def __init__(self, kernel: Any, settings: McpSettings, record_transitions: bool = True) -> None:
        self.kernel = kernel
        self.record_transitions = record_transitions
        self.db = kernel.db
        self.settings = settings
        material = settings.secrets_key.get_secret_value().encode() if settings.secrets_key else None
        self.box = SecretBox(material or kernel.settings.signing_key())
        self.connections: dict[str, Connection] = {}
        self.metrics: ToolMetrics | None = None
        self._lock = asyncio.Lock()
        self.autostart_task: asyncio.Task[None] | None = None

    # -- registry --------------------------------------------------------------------------------
    async def _row(self, session: AsyncSession, name: str) -> McpServerRow:
        row = (await session.exec(select(McpServerRow).where(McpServerRow.name == name))).first()
        if row is None:
            raise NotFound(f"no MCP server named {name!r}", slug="mcp-server-not-found")
        return row

    async def row(self, name: str) -> McpServerRow:
        async with self.db.session() as session:
            return await self._row(session, name)

    async def rows(self) -> list[McpServerRow]:
        async with self.db.session() as session:
            return list((await session.exec(select(McpServerRow).order_by(col(McpServerRow.name)))).all())

    def spec(self, row: McpServerRow) -> ServerSpec:
        """How to reach ``row``'s server, secrets decrypted."""
        return ServerSpec(
            name=row.name,
            transport=row.transport,
            command=row.command,
            args=tuple(row.args or ()),
            env=self.box.open(row.env_encrypted),
            url=row.url,
            headers=self.box.open(row.headers_encrypted),
        )

    def out(self, row: McpServerRow, detail: bool = False) -> ServerOut:
        """The API view of ``row``: secrets masked, live state of this instance's connection."""
        conn = self.connections.get(row.name)
        return ServerOut(
            id=row.id,
            name=row.name,
            transport=row.transport,  # type: ignore[arg-type]
            command=row.command,
            args=list(row.args or ()),
            env=masked(self.box.open(row.env_encrypted)),
            url=row.url,
            headers=masked(self.box.open(row.headers_encrypted)),
            allowed_tools=row.allowed_tools,
            autostart=row.autostart,
            desired=row.desired,  # type: ignore[arg-type]
            call_timeout_seconds=row.call_timeout_seconds,
            state=conn.state if conn else "stopped",  # type: ignore[arg-type]
            pid=conn.pid if conn else None,
            restarts=conn.restarts if conn else 0,
            last_error=conn.last_error if conn else None,
            server_info=conn.server_info if conn else None,
            tools=len(conn.tools) if conn else 0,
            stderr_tail=list(conn.stderr)[-20:] if conn and detail else [],
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _apply(self, row: McpServerRow, entry: ServerEntry | ServerPatch, fields: set[str]) -> None:
        if "command" in fields and entry.command is not None:
            row.transport, row.command, row.url, row.headers_encrypted = "stdio", entry.command, None, None
        if "url" in fields and entry.url is not None:
            row.transport, row.url, row.command, row.args, row.env_encrypted = "http", entry.url, None, [], None
        if "args" in fields:
            row.args = list(entry.args or [])
        for name in ("env", "headers"):
            if name in fields:
                column = f"{name}_encrypted"
                stored = self.box.open(getattr(row, column))
                given = getattr(entry, name) or {}
                kept = {k: (stored.get(k, v) if v == MASK else v) for k, v in given.items()}
                setattr(row, column, self.box.seal(kept))
        for name in ("allowed_tools", "autostart", "call_timeout_seconds"):
            if name in fields and hasattr(entry, name):
                value = getattr(entry, name)
                if value is not None or name != "autostart":
                    setattr(row, name, value)
        if (row.transport == "stdio" and not row.command) or (row.transport == "http" and not row.url):
            raise ValidationFailed("a server needs a command (stdio) or a url (streamable HTTP)")
        row.updated_at = utcnow()

    async def create(self, data: ServerIn, principal: Principal | None) -> McpServerRow:
        async with self.db.session() as session:
            if (await session.exec(select(McpServerRow.id).where(McpServerRow.name == data.name))).first():
                raise Conflict(f"an MCP server named {data.name!r} exists", slug="mcp-server-exists")
            row = McpServerRow(name=data.name, transport="stdio" if data.command else "http", args=[])
            self._apply(row, data, data.model_fields_set | {"command", "url"})
            session.add(row)
            await self._record(session, "server_created", row.name, principal, {"transport": row.transport})
            try:
                await session.commit()
            except IntegrityError:  # created meanwhile by a concurrent request
                raise Conflict(f"an MCP server named {data.name!r} exists", slug="mcp-server-exists") from None
            await session.refresh(row)
        return row

    async def update(self, name: str, patch: ServerPatch, principal: Principal | None) -> McpServerRow:
        async with self.db.session() as session:
            row = await self._row(session, name)
            self._apply(row, patch, patch.model_fields_set)
            session.add(row)
            await self._record(session, "server_updated", name, principal, {"fields": sorted(patch.model_fields_set)})
            await session.commit()
            await session.refresh(row)
        conn = self.connections.get(name)
        if conn is not None and conn.running and conn.spec != self.spec(row):
            await self._restart(row)
        return row

    async def delete(self, name: str, principal: Principal | None) -> None:
        async with self.db.session() as session:
            row = await self._row(session, name)
            await session.delete(row)
            await self._record(session, "server_deleted", name, principal, {})
            await session.commit()
        conn = self.connections.pop(name, None)
        if conn is not None:
            await conn.stop()

    async def import_servers(self, doc: ImportDoc, replace: bool, principal: Principal | None) -> ImportResult:
        result = ImportResult(created=[], updated=[], skipped=[])
        servers: list[tuple[ServerIn, ServerEntry]] = []
        for name, entry in doc.mcp_servers.items():  # all of them valid, or none imported
            try:
                servers.append((ServerIn(name=name, **entry.model_dump(exclude_unset=True)), entry))
            except ValueError as exc:
                raise ValidationFailed(f"mcpServers.{name}: {exc}") from None
        for data, entry in servers:
            try:
                await self.create(data, principal)
                result.created.append(data.name)
            except Conflict:
                if not replace:
                    result.skipped.append(data.name)
                    continue
                fields = ("command", "args", "env", "url", "headers")
                await self.update(data.name, ServerPatch(**{f: getattr(entry, f) for f in fields}), principal)
                result.updated.append(data.name)
        return result

    async def export(self, include_secrets: bool, principal: Principal | None) -> dict[str, Any]:
        servers: dict[str, Any] = {}
        for row in await self.rows():
            spec = self.spec(row)
            if row.transport == "stdio":
                entry: dict[str, Any] = {"command": row.command, "args": list(row.args or ())}
                entry["env"] = spec.env if include_secrets else masked(spec.env)
            else:
                entry = {"url": row.url, "headers": spec.headers if include_secrets else masked(spec.headers)}
            servers[row.name] = entry
        if include_secrets:
            await self.audit("mcp.export_secrets", "success", principal, None, {"servers": sorted(servers)})
        return {"mcpServers": servers}

    # -- lifecycle -------------------------------------------------------------------------------
    async def _set_desired(self, name: str, desired: str, principal: Principal | None) -> McpServerRow:
        async with self.db.session() as session:
            row = await self._row(session, name)
            row.desired, row.updated_at = desired, utcnow()
            session.add(row)
            await session.commit()
            await session.refresh(row)
        await self.audit(f"mcp.{'start' if desired == 'running' else 'stop'}", "success", principal, name, {})
        return row

    def _connection(self, row: McpServerRow) -> Connection:
        """The running connection of ``row``, or a new one built from the registry."""
        from builtin_plugins.mcp.connection import Connection  # loads the MCP SDK: only when needed

        conn = self.connections.get(row.name)
        if conn is None or not conn.running:
            conn = Connection(self.spec(row), self.settings, self._on_transition)
            self.connections[row.name] = conn
        return conn

    async def request(self, name: str, action: str, principal: Principal | None) -> None:
        """Record the wanted state of ``name`` and an ``mcp.control`` event in one transaction: the
        instance that consumes the event reconciles (used by the CLI, which runs no servers itself)."""
        async with self.db.session() as session:
            row = await self._row(session, name)
            row.desired, row.updated_at = ("running" if action == "start" else "stopped"), utcnow()
            session.add(row)
            await self._record(session, "control", name, principal, {"action": action})
            await session.commit()
        await self.audit(f"mcp.{action}", "success", principal, name, {"via": "control event"})

    async def start(self, name: str, principal: Principal | None = None) -> McpServerRow:
        row = await self._set_desired(name, "running", principal)
        async with self._lock:
            conn = self._connection(row)
            conn.start()
        await _left_stopped(conn)
        return row

    async def stop(self, name: str, principal: Principal | None = None) -> McpServerRow:
        row = await self._set_desired(name, "stopped", principal)
        conn = self.connections.get(name)
        if conn is not None:
            await conn.stop()
        return row

    async def restart(self, name: str, principal: Principal | None = None) -> McpServerRow:
        row = await self._set_desired(name, "running", principal)
        await self._restart(row)
        return row

    async def _restart(self, row: McpServerRow) -> None:
        async with self._lock:
            conn = self.connections.get(row.name)
            if conn is not None:
                await conn.stop()
                self.connections.pop(row.name, None)
            conn = self._connection(row)
            conn.start()
        await _left_stopped(conn)

    async def reconcile(self, name: str) -> None:
        """Bring this instance's connection of ``name`` in line with the registry (desired state, spec)."""
        async with self.db.session() as session:
            row = (await session.exec(select(McpServerRow).where(McpServerRow.name == name))).first()
        conn = self.connections.get(name)
        if row is None or row.desired == "stopped":
            if conn is not None:
                await conn.stop()
            if row is None:
                self.connections.pop(name, None)
            return
        if conn is not None and conn.running and conn.spec != self.spec(row):
            await self._restart(row)
        else:
            async with self._lock:
                self._connection(row).start()

    async def autostart(self) -> None:
        """Start every server marked ``autostart`` whose desired state is not ``stopped`` by an admin."""
        for row in await self.rows():
            if row.autostart and row.desired == "running":
                async with self._lock:
                    self._connection(row).start()

    async def close(self) -> None:
        await asyncio.gather(*(conn.stop() for conn in self.connections.values()), return_exceptions=True)

    async def _on_transition(self, name: str, previous: str, state: str, details: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.count(self.connections)
        if not self.record_transitions:
            return
        async with self.db.session() as session:
            await self._record(session, state, name, None, {"server": name, "previous": previous, **details})
            await session.commit()

    async def _record(
        self, session: AsyncSession, action: str, name: str, principal: Principal | None, payload: dict[str, Any]
    ) -> None:
        event = Event.create(
            type=f"mcp.{action}", source="mcp", subject_id=name, actor=principal, payload={"server": name, **payload}
        )
        await self.kernel.publish(session, event)
        if action.startswith("server_"):
            await self.audit(f"mcp.{action}", "success", principal, name, payload, session)

    async def audit(
        self,
        action: str,
        outcome: str,
        principal: Principal | None,
        target: str | None,
        details: Mapping[str, Any],
        session: AsyncSession | None = None,
    ) -> None:
        audit = getattr(self.kernel.services.get("auth"), "audit", None)
        if audit is None:
            log.info("mcp.audit", action=action, outcome=outcome, target=target)
            return
        entry = audit.entry(action, outcome, principal or SYSTEM, target_id=target, details=dict(details))
        await audit.record(entry, session)

    # -- tools -----------------------------------------------------------------------------------
    async def catalog(self) -> list[ToolOut]:
        """Every tool of every connected server, namespaced ``<server>.<tool>``, sorted by name."""
        allow = {row.name: row.allowed_tools for row in await self.rows()}
        tools: list[ToolOut] = []
        for server, conn in sorted(self.connections.items()):
            if server not in allow or conn.state not in ("ready", "degraded"):
                continue
            for tool in conn.tools:
                allowed_tools = allow[server]
                tools.append(
                    ToolOut(
                        name=f"{server}.{tool.name}",
                        server=server,
                        tool=tool.name,
                        title=tool.title,
                        description=tool.description,
                        input_schema=tool.input_schema,
                        annotations=tool.annotations.model_dump(exclude_none=True) if tool.annotations else None,
                        allowed=allowed_tools is None or tool.name in allowed_tools,
                    )
                )
        return sorted(tools, key=lambda t: t.name)

    async def call(self, name: str, tool: str, arguments: dict[str, Any], principal: Principal | None) -> CallOut:
        """Call ``tool`` of server ``name`` after checking the allow list and the arguments' schema."""
        row = await self.row(name)
        conn = self.connections.get(name)
        if conn is None or conn.state not in ("ready", "degraded"):
            state = conn.state if conn else "stopped"
            raise ServerNotReady(f"MCP server {name!r} is {state}", state=state)
        found = next((t for t in conn.tools if t.name == tool), None)
        if found is None:
            raise NotFound(f"MCP server {name!r} has no tool {tool!r}", slug="mcp-tool-not-found")
        if row.allowed_tools is not None and tool not in row.allowed_tools:
            await self.audit("mcp.tool_call", "denied", principal, f"{name}.{tool}", {"server": name, "tool": tool})
            raise ToolNotAllowed(f"tool {tool!r} of MCP server {name!r} is not on its allow list")
        _validate(found.input_schema, arguments)
        from mcp.shared.exceptions import MCPError
        from mcp_types import REQUEST_TIMEOUT

        timeout = row.call_timeout_seconds or self.settings.call_timeout_seconds
        started = time.perf_counter()
        outcome, problem = "success", None
        try:
            result = await conn.call_tool(tool, arguments, timeout)
            if result.is_error:
                outcome = "tool-error"
        except NotConnected as exc:
            outcome, problem = "failure", ServerNotReady(str(exc))
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                outcome, problem = "timeout", ToolTimeout(f"{name}.{tool} did not answer within {timeout} s")
            else:
                outcome, problem = "failure", ToolCallFailed(f"{name}.{tool}: {exc.message}", code=exc.code)
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.calls.labels(name, tool, outcome).inc()
            self.metrics.seconds.labels(name, tool).observe(elapsed)
            if outcome != "success":
                self.metrics.errors.labels(name, tool).inc()
        details = {"server": name, "tool": tool, "arguments": sorted(arguments), "outcome": outcome}
        await self.audit(
            "mcp.tool_call",
            "success" if problem is None else "failure",
            principal,
            f"{name}.{tool}",
            {**details, "duration_ms": round(elapsed * 1000, 3)},
        )
        if problem is not None:
            raise problem
        return CallOut(
            server=name,
            tool=tool,
            is_error=bool(result.is_error),
            content=[block.model_dump(mode="json", exclude_none=True) for block in result.content],
            structured_content=result.structured_content,
            duration_ms=round(elapsed * 1000, 3),
        )


async def _left_stopped(conn: Connection) -> None:
    """Wait (briefly) until a just-started connection reports ``starting``, so answers show it."""
    with contextlib.suppress(TimeoutError):
        await conn.wait_for({"starting", "ready", "degraded", "failed"}, 5.0)


def _validate(schema: dict[str, Any], arguments: dict[str, Any]) -> None:
    """422 with one entry per problem unless ``arguments`` satisfy the tool's JSON schema."""
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return  # the server's schema is broken: let the server judge its own arguments
    errors = sorted(validator_class(schema).iter_errors(arguments), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValidationFailed(
            "the arguments do not match the tool's input schema",
            errors=[
                {"loc": ["arguments", *map(str, e.absolute_path)], "msg": e.message, "type": str(e.validator)}
                for e in errors
            ],
        )
