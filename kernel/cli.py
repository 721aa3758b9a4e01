"""The ``taylordash`` command line. Exit codes: 0 success, 1 runtime failure, 2 bad usage or settings."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
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
    from kernel.logging import configure_logging

    configure_logging("warning", "console")


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


# -- plugins --------------------------------------------------------------------------------------
@cli.group()
def plugins() -> None:
    """List, inspect, enable and disable plugins (changes apply at the next start)."""


async def _plugin_records(kernel: Any) -> list[dict[str, Any]]:
    from kernel.models import disabled_plugins

    await kernel.prepare_schema()
    disabled = await disabled_plugins(kernel.db)
    records = []
    for record in kernel.host.records.values():
        record.enabled = record.name not in disabled
        records.append(record.as_dict())
    return records


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


def _set_enabled(name: str, enabled: bool) -> None:
    from kernel.models import set_plugin_enabled

    async def apply(kernel: Any) -> None:
        if name not in kernel.host.records:
            known = ", ".join(kernel.host.records)
            raise CommandError(f"no plugin named {name!r} (known: {known})")
        await kernel.prepare_schema()
        await set_plugin_enabled(kernel.db, name, enabled)

    _run(apply, _settings())
    click.echo(f"{name} {'enabled' if enabled else 'disabled'}; restart the server to apply")


@plugins.command("enable")
@click.argument("name")
def plugins_enable(name: str) -> None:
    """Enable plugin NAME."""
    _set_enabled(name, True)


@plugins.command("disable")
@click.argument("name")
def plugins_disable(name: str) -> None:
    """Disable plugin NAME: its routes, handlers and commands are gone after a restart."""
    _set_enabled(name, False)


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
    try:
        cli.main(standalone_mode=False)
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
