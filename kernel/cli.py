"""The ``taylordash`` command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage or settings."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kernel import __version__
from kernel.errors import ConfigError, StartupError, TaylorDashError
from kernel.settings import Settings, load_settings

T = TypeVar("T")


class CommandError(TaylorDashError):
    """A command cannot do what was asked; printed as one ``error:`` line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        self.exit_code = exit_code
        super().__init__(message)


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _run(factory: Callable[[Any], Awaitable[T]], settings: Settings) -> T:
    """Run ``factory(kernel)`` on a fresh event loop with a kernel that is disposed afterwards."""
    from kernel.app import Kernel

    async def main() -> T:
        kernel = Kernel(settings)
        try:
            return await factory(kernel)
        finally:
            await kernel.db.dispose()

    return asyncio.run(main())


class RootGroup(click.Group):
    """Kernel commands plus those plugins add through ``register_commands``."""

    def _plugin_commands(self) -> dict[str, click.Command]:
        if not hasattr(self, "_plugin_cache"):
            from kernel.plugins import PluginHost, sequence_of

            host = PluginHost()
            host.register()
            found: dict[str, click.Command] = {}
            for plugin, commands in host.collect("register_commands", sequence_of(click.Command)):
                for command in commands:
                    if command.name in self.commands or command.name in found:
                        host.fail(plugin, f"command {command.name!r} clashes with an existing command")
                        continue
                    found[str(command.name)] = command
            self._plugin_cache = found
        return self._plugin_cache

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.commands.get(cmd_name) or self._plugin_commands().get(cmd_name)


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """TaylorDash: self-hosted, event-driven project management on a plugin-first kernel.

    Settings come from TD_* environment variables and ./taylordash.toml (see `config show`).
    Exit codes: 0 success, 1 runtime failure (port in use, database unreachable, schema behind),
    2 bad usage or invalid settings.
    """


@cli.command()
def version() -> None:
    """Print the TaylorDash version."""
    click.echo(__version__)


# -- serve ----------------------------------------------------------------------------------------
def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(f"port {port} on {host} is already in use") from None
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _fresh_metrics_dir(settings: Settings) -> Path:
    """An empty folder where the workers of this server share their prometheus-client values
    (multiprocess mode); prometheus-client reads the variable when imported, so it is set before
    the workers start."""
    path = settings.data_dir / "run" / f"prometheus-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@cli.command()
@click.option("--host", help="Interface to listen on [TD_HOST, default 127.0.0.1]")
@click.option("--port", type=int, help="TCP port [TD_PORT, default 8000]")
@click.option("--workers", type=int, help="Worker processes [TD_WORKERS, default 1]")
@click.option("--migrate", is_flag=True, help="Upgrade a PostgreSQL schema that is behind head before serving")
def serve(host: str | None, port: int | None, workers: int | None, migrate: bool) -> None:
    """Serve the API and dashboard.

    The embedded SQLite database is migrated automatically; a PostgreSQL schema behind head is refused
    unless --migrate is given.
    """
    import uvicorn

    from kernel.app import Kernel, KernelApp
    from kernel.logging import configure_logging

    settings = _settings(host=host, port=port, workers=workers)
    configure_logging(settings.log_level, settings.log_format)
    _check_port_free(settings.host, settings.port)
    kernel = Kernel(settings)

    async def preflight() -> None:
        try:
            await kernel.prepare_schema(True if migrate else None)
        finally:
            await kernel.db.dispose()

    asyncio.run(preflight())
    if settings.workers > 1:
        os.environ.update(TD_HOST=settings.host, TD_PORT=str(settings.port))
        metrics_dir = _fresh_metrics_dir(settings)
        os.environ[PROMETHEUS_MULTIPROC_ENV] = str(metrics_dir)
        try:
            uvicorn.run(
                "kernel.app:create_app_from_env",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                log_config=None,
                access_log=False,
                proxy_headers=True,
            )
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return
    app = KernelApp(kernel, migrate=False)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=8,
    )
    server = uvicorn.Server(config)
    # uvicorn raises the signal that stopped it again once its graceful shutdown is done, which
    # would end the process with -SIGTERM: being asked to stop is the normal end of ``serve`` (exit 0).
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: None)
    server.run()
    if not server.started:
        raise StartupError("the server did not start; see the log above")


# -- db -------------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """Database schema migrations (one Alembic branch per plugin)."""


@db.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: every branch's head)."""
    _run(lambda k: k.migrator().upgrade(revision), _settings())
    click.echo(f"upgraded to {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (e.g. `base`, `auth@base`, `kernel_0001`)."""
    _run(lambda k: k.migrator().downgrade(revision), _settings())
    click.echo(f"downgraded to {revision}")


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def db_current(as_json: bool) -> None:
    """Show the revisions the database is at and those still pending."""

    async def read(kernel: Any) -> dict[str, Any]:
        migrator = kernel.migrator()
        return {
            "current": sorted(await migrator.current()),
            "heads": sorted(migrator.heads()),
            "pending": await migrator.pending(),
        }

    state = _run(read, _settings())
    if as_json:
        click.echo(json.dumps(state))
        return
    click.echo("current: " + (", ".join(state["current"]) or "(empty database)"))
    click.echo("heads:   " + ", ".join(state["heads"]))
    click.echo(f"pending: {len(state['pending'])}")


# -- scan -----------------------------------------------------------------------------------------
@cli.command("scan")
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Report format",
)
@click.option(
    "--fail-on",
    type=click.Choice(["low", "medium", "high"]),
    default="medium",
    show_default=True,
    help="Lowest severity that fails the scan",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Write the report to FILE instead of stdout")
def scan(targets: tuple[str, ...], fmt: str, fail_on: str, output: str | None) -> None:
    """Scan plugin packages: source folders, wheels, sdists (.tar.gz) or zips.

    Runs bandit and TaylorDash's rules for malicious packages and checks the manifest
    (taylordash-plugin.toml). Exit codes: 0 pass, 1 a finding at or above --fail-on,
    2 unusable input (one `error:` line on stderr). See docs/scanner.md.
    """
    from sandbox.scanner.cli import UnusableTarget, run_scan

    try:
        code = run_scan(targets, fmt, fail_on, output)
    except UnusableTarget as exc:
        raise CommandError(str(exc), exit_code=2) from None
    if code:
        raise click.exceptions.Exit(code)


# -- plugins --------------------------------------------------------------------------------------
@cli.group()
def plugins() -> None:
    """List, inspect, enable and disable plugins; install, configure and remove uploaded ones.

    Enabling or disabling a builtin or entry-point plugin applies at the next start."""


async def _plugin_records(kernel: Any) -> list[dict[str, Any]]:
    from kernel.models import disabled_plugins

    await kernel.prepare_schema()
    disabled = await disabled_plugins(kernel.db)
    records = []
    for record in kernel.host.records.values():
        if record.sandboxed:
            continue
        record.enabled = record.name not in disabled
        records.append({**record.as_dict(), "source": "builtin" if record.builtin else "entry_point"})
    if kernel.host.records.get("plugins") is not None and kernel.host.records["plugins"].active:
        await kernel.start(serve_bus=False)
        registry = kernel.services.get("plugins")
        if registry is not None:
            records += [_uploaded_record(row) for row in await registry.rows()]
        await kernel.stop()
    return records


def _uploaded_record(row: Any) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "module": None,
        "builtin": False,
        "enabled": row.status == "enabled",
        "active": False,
        "hooks": [],
        "error": None,
        "description": row.description,
        "source": "uploaded",
        "status": row.status,
        "verdict": row.verdict,
        "violations_count": row.violations_count,
    }


CLI_PRINCIPAL_ARGS = {"id": "cli", "role": "admin", "name": "command line", "kind": "cli"}


async def _in_registry(kernel: Any, action: Callable[[Any, Any], Awaitable[T]]) -> T:
    from kernel.security import Principal

    await kernel.start(serve_bus=False)
    try:
        registry = kernel.services.get("plugins")
        if registry is None:
            raise CommandError("the plugin registry (plugin 'plugins') is disabled or failed", exit_code=1)
        return await action(registry, Principal(**CLI_PRINCIPAL_ARGS))
    finally:
        await kernel.stop()


def _registry_run(factory: Callable[[Any], Awaitable[T]]) -> T:
    """``_run`` for registry work: problems the registry reports become one ``error:`` line, exit 2
    for bad input and 1 when the registry refuses."""
    from kernel.errors import BadRequest, NotFound, ProblemError, ValidationFailed

    try:
        return _run(factory, _settings())
    except ProblemError as exc:
        detail = str(exc)
        errors = exc.extra.get("errors")
        if errors:
            detail += ": " + "; ".join(f"{'/'.join(e['loc']) or '(root)'}: {e['msg']}" for e in errors)
        bad_input = isinstance(exc, NotFound | BadRequest | ValidationFailed) or exc.status in (413, 415, 422)
        raise CommandError(detail, exit_code=2 if bad_input else 1) from None


def _with_registry(action: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run ``action(registry, principal)`` on a started kernel (events are written, not served)."""
    return _registry_run(lambda kernel: _in_registry(kernel, action))


def _echo_plugin(row: Any, as_json: bool, line: str) -> None:
    if as_json:
        data = row if isinstance(row, dict) else {**_uploaded_record(row), "scan_report": row.scan_report}
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(line)


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_list(as_json: bool) -> None:
    """List every discovered plugin with its version, state and hooks."""
    records = _run(_plugin_records, _settings())
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for r in records:
        state = "enabled" if r["enabled"] else "disabled"
        if r["error"]:
            state = "failed"
        origin = "builtin" if r["builtin"] else r["module"]
        if r.get("source") == "uploaded":
            state, origin = r["status"], f"uploaded (scan: {r['verdict']})"
        click.echo(f"{r['name']:<14} {r['version']:<10} {state:<9} {origin}")


@plugins.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_info(name: str, as_json: bool) -> None:
    """Show one plugin."""
    records = {r["name"]: r for r in _run(_plugin_records, _settings())}
    if name not in records:
        raise CommandError(f"no plugin named {name!r} (known: {', '.join(records)})")
    record = records[name]
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    for key, value in record.items():
        click.echo(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


def _set_enabled(name: str, enabled: bool, as_json: bool = False, override_reason: str | None = None) -> None:
    from kernel.models import disabled_plugins, set_plugin_enabled

    async def change(service: Any, principal: Any) -> Any:
        if enabled:
            return await service.enable(name, principal, override_reason)
        return await service.disable(name, principal)

    async def apply(kernel: Any) -> Any:
        await kernel.prepare_schema()
        registry = kernel.host.records.get("plugins")
        if registry is not None and registry.active and "plugins" not in await disabled_plugins(kernel.db):
            return await _in_registry(kernel, change)  # recorded with its event and audit entry
        if name not in kernel.host.records:
            known = ", ".join(kernel.host.records)
            raise CommandError(f"no plugin named {name!r} (known: {known})")
        await set_plugin_enabled(kernel.db, name, enabled)
        return {"name": name, "enabled": enabled, "restart_required": True}

    result = _registry_run(apply)
    restart = f"{name} {'enabled' if enabled else 'disabled'}; restart the server to apply"
    _echo_plugin(result, as_json, restart if isinstance(result, dict) else f"{name} {result.status}")


@plugins.command("enable")
@click.argument("name")
@click.option("--override-reason", help="Enable despite a failing scan or a quarantine; stored and audited")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_enable(name: str, override_reason: str | None, as_json: bool) -> None:
    """Enable plugin NAME (an uploaded plugin needs a passing scan, or --override-reason)."""
    _set_enabled(name, True, as_json, override_reason)


@plugins.command("disable")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_disable(name: str, as_json: bool) -> None:
    """Disable plugin NAME: its routes, handlers and commands are gone after a restart."""
    _set_enabled(name, False, as_json)


@plugins.command("install")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (with the scan report)")
def plugins_install(file: str, as_json: bool) -> None:
    """Upload the package FILE (wheel, sdist or zip) into the registry: quarantined, scanned, registered.
    Enable it afterwards with `plugins enable`."""
    from pathlib import Path

    row = _with_registry(lambda service, principal: service.install_file(Path(file), principal))
    findings = len(row.scan_report["targets"][0]["findings"])
    _echo_plugin(row, as_json, f"{row.name} {row.version}: {row.status}, scan {row.verdict} ({findings} finding(s))")


@plugins.command("remove")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_remove(name: str, as_json: bool) -> None:
    """Remove the uploaded plugin NAME and delete its package."""
    _with_registry(lambda service, principal: service.remove(name, principal))
    _echo_plugin({"name": name, "status": "removed"}, as_json, f"{name} removed")


@plugins.command("config")
@click.argument("name")
@click.option("--set", "values", help="Replace the configuration with this JSON object")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def plugins_config(name: str, values: str | None, as_json: bool) -> None:
    """Show the configuration of the uploaded plugin NAME, or replace it (--set '{"key": 1}'),
    validated against the JSON schema in its manifest."""
    if values is None:
        result = _with_registry(lambda service, principal: service.get_config(name))
    else:
        try:
            parsed = json.loads(values)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--set is not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise CommandError("--set must be a JSON object")
        result = _with_registry(lambda service, principal: service.set_config(name, parsed, principal))
    lines = [f"{key} = {json.dumps(value)}" for key, value in result["config"].items()]
    _echo_plugin(result, as_json, "\n".join(lines) or f"{name}: no configuration (revision {result['revision']})")


# -- config ---------------------------------------------------------------------------------------
@cli.group()
def config() -> None:
    """Inspect the effective settings."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def config_show(as_json: bool) -> None:
    """Print the effective settings with every secret masked."""
    data = _settings().public_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        click.echo(f"TD_{key.upper()}={value if value is not None else ''}")


def main() -> None:
    """Console-script entry point: maps kernel errors to one stderr line and an exit code."""
    from kernel.logging import configure_logging

    # Before anything imports plugins: their log lines go to stderr, never into --json output.
    configure_logging("warning", "console")
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:  # click returns, not raises, the code of ctx.exit()/Exit
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except StartupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except CommandError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except TaylorDashError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
