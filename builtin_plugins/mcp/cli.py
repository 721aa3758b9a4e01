"""``taylordash mcp add|list|import|export|start|stop|tools|call``.

``add``, ``list``, ``import``, ``export``, ``start`` and ``stop`` work on the registry in the database.
``start``/``stop`` record the wanted state and write an ``mcp.control`` event to the outbox: a running
TaylorDash picks it up through the bus and starts or stops the server (and keeps it so across
restarts). ``tools`` and ``call`` run the server in this process for the duration of the command (or
connect to it, for a url), with the same allow list and argument validation as the API; they leave no
state events behind.

Exit codes: 0 success, 1 runtime failure (the server did not start, the call failed or timed out, the
tool reported an error), 2 bad usage or invalid arguments, 3 no such server or tool, 4 the tool is not
on the server's allow list. Errors are one ``error:`` line on stderr; secret values are always masked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from builtin_plugins.mcp.config import McpSettings
from builtin_plugins.mcp.schemas import ImportDoc, ServerIn
from builtin_plugins.mcp.secrets import SecretsUnreadable
from builtin_plugins.mcp.service import McpManager
from kernel.cli import CommandError
from sdk import Principal, ProblemError

T = TypeVar("T")
CLI = Principal(id="cli", role="admin", name="command line", kind="cli")
EXIT = {400: 2, 422: 2, 404: 3, 403: 4, 409: 1}


def _run(work: Callable[[McpManager], Awaitable[T]], *, local: bool = False) -> T:
    """Run ``work(manager)`` against the configured database; servers started locally are stopped after."""
    from kernel.app import Kernel
    from kernel.settings import load_settings

    async def main() -> T:
        settings = load_settings()
        kernel = Kernel(settings)
        manager: McpManager | None = None
        try:
            await kernel.prepare_schema()
            config = McpSettings.model_validate(settings.plugin_settings("mcp"))
            manager = McpManager(kernel, config, record_transitions=not local)
            return await work(manager)
        finally:
            if manager is not None:
                await manager.close()
            await kernel.stop()

    try:
        return asyncio.run(main())
    except ProblemError as problem:
        errors = problem.extra.get("errors") or []
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) if errors else ""
        message = (problem.detail or problem.title) + (f" ({detail})" if detail else "")
        raise CommandError(message, exit_code=EXIT.get(problem.status, 1)) from None
    except SecretsUnreadable as exc:
        raise CommandError(str(exc), exit_code=1) from None


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise CommandError(f"{option} expects NAME=VALUE, got {name or value!r}")
        pairs[name] = rest
    return pairs


@click.group("mcp")
def mcp() -> None:
    """Manage the MCP servers TaylorDash connects to."""


@mcp.command("add")
@click.argument("name")
@click.option("--command", "command", help="Executable of a stdio server")
@click.option("--arg", "args", multiple=True, help="An argument of the command (repeat for more)")
@click.option("--env", "env", multiple=True, help="NAME=VALUE for the child's environment (stored encrypted)")
@click.option("--url", help="Streamable-HTTP endpoint of a remote server")
@click.option("--header", "headers", multiple=True, help="NAME=VALUE HTTP header (stored encrypted)")
@click.option("--allow", "allowed", multiple=True, help="A tool callers may use (repeat; default: every tool)")
@click.option("--no-autostart", is_flag=True, help="Do not start it with the kernel")
@click.option("--timeout", type=click.FloatRange(0, 3600, min_open=True), help="Call timeout in seconds")
def add(
    name: str,
    command: str | None,
    args: tuple[str, ...],
    env: tuple[str, ...],
    url: str | None,
    headers: tuple[str, ...],
    allowed: tuple[str, ...],
    no_autostart: bool,
    timeout: float | None,
) -> None:
    """Register an MCP server: --command (stdio) or --url (streamable HTTP)."""
    values: dict[str, Any] = {"name": name, "autostart": not no_autostart}
    if command is not None:
        values.update(command=command, args=list(args), env=_pairs(env, "--env"))
    if url is not None:
        values.update(url=url, headers=_pairs(headers, "--header"))
    if allowed:
        values["allowed_tools"] = list(allowed)
    if timeout is not None:
        values["call_timeout_seconds"] = timeout
    try:
        data = ServerIn.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "server"
        raise CommandError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None
    row = _run(lambda manager: manager.create(data, CLI))
    click.echo(f"added {row.name} ({row.transport}); start it with `taylordash mcp start {row.name}`")


@mcp.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (secrets masked)")
def list_servers(as_json: bool) -> None:
    """List registered servers and the state they are wanted in."""

    async def work(manager: McpManager) -> list[Any]:
        return [manager.out(row) for row in await manager.rows()]

    servers = _run(work)
    if as_json:
        click.echo(json.dumps([s.model_dump(mode="json", exclude={"state", "pid", "restarts"}) for s in servers]))
        return
    if not servers:
        click.echo("no MCP servers registered")
    for server in servers:
        target = server.url if server.transport == "http" else " ".join([server.command or "", *server.args])
        allowed = "all tools" if server.allowed_tools is None else f"{len(server.allowed_tools)} tool(s) allowed"
        click.echo(f"{server.name:<20} {server.transport:<5} {server.desired:<8} {allowed:<20} {target}")


@mcp.command("import")
@click.argument("file", type=click.File("r"))
@click.option("--replace", is_flag=True, help="Overwrite servers that exist (else they are skipped)")
def import_servers(file: Any, replace: bool) -> None:
    """Import an {"mcpServers": {...}} JSON document (FILE, or - for stdin)."""
    try:
        doc = ImportDoc.model_validate_json(file.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CommandError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    result = _run(lambda manager: manager.import_servers(doc, replace, CLI))
    click.echo(f"created {len(result.created)}, updated {len(result.updated)}, skipped {len(result.skipped)}")


@mcp.command("export")
@click.option("--include-secrets", is_flag=True, help="Reveal env and header values (audited)")
def export_servers(include_secrets: bool) -> None:
    """Print the registry as an {"mcpServers": {...}} JSON document (secrets masked by default)."""
    click.echo(json.dumps(_run(lambda manager: manager.export(include_secrets, CLI)), indent=2))


def _control(action: str) -> Callable[[str], None]:
    def command(name: str) -> None:
        _run(lambda manager: manager.request(name, action, CLI))
        click.echo(f"{name}: {action} requested; a running TaylorDash applies it")

    return command


mcp.command("start", help="Want NAME running: a running TaylorDash starts it (and with every kernel start).")(
    click.argument("name")(_control("start"))
)
mcp.command("stop", help="Want NAME stopped: a running TaylorDash stops it (and leaves it stopped).")(
    click.argument("name")(_control("stop"))
)


async def _started(manager: McpManager, name: str) -> None:
    row = await manager.row(name)
    conn = manager._connection(row)
    conn.start()
    state = await conn.wait_for({"ready", "failed"}, manager.settings.start_timeout_seconds + 5)
    if state != "ready":
        raise CommandError(f"MCP server {name!r} did not start: {conn.last_error}", exit_code=1)


@mcp.command("tools")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The catalog entries as JSON")
def tools(name: str, as_json: bool) -> None:
    """Start NAME here, list its tools, stop it."""

    async def work(manager: McpManager) -> list[Any]:
        await _started(manager, name)
        return await manager.catalog()

    catalog = _run(work, local=True)
    if as_json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in catalog], indent=2))
        return
    for tool in catalog:
        mark = " " if tool.allowed else "x"
        summary = (tool.description or "").strip().splitlines()[:1]
        click.echo(f"{mark} {tool.name:<40} {summary[0][:80] if summary else ''}")


@mcp.command("call")
@click.argument("name")
@click.argument("tool")
@click.option("--args", "arguments", default="{}", show_default=True, help="Arguments as a JSON object")
@click.option("--json", "as_json", is_flag=True, help="The whole result as JSON")
def call(name: str, tool: str, arguments: str, as_json: bool) -> None:
    """Start NAME here, call TOOL with --args (checked against its schema and the allow list), stop it."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        raise CommandError("--args is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise CommandError("--args must be a JSON object")

    async def work(manager: McpManager) -> Any:
        await _started(manager, name)
        return await manager.call(name, tool, parsed, CLI)

    result = _run(work, local=True)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        for block in result.content:
            click.echo(block.get("text", json.dumps(block)))
    if result.is_error:
        raise SystemExit(1)


COMMANDS = [mcp]
