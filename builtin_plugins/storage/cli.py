"""``taylordash backup create|list|restore``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from builtin_plugins.storage.backup import BackupManager
from builtin_plugins.storage.config import StorageSettings

T = TypeVar("T")


def _with_manager(action: Callable[[BackupManager], Awaitable[T]]) -> T:
    """Run ``action`` with a backup manager for the configured database and storage backend."""
    from kernel.app import Kernel
    from kernel.settings import load_settings

    async def main() -> T:
        settings = load_settings()
        kernel = Kernel(settings)
        config = StorageSettings.model_validate(settings.plugin_settings("storage"))
        backend: Any = kernel.pm.hook.storage_backend(kernel=kernel, url=settings.storage_url)
        if backend is None:
            raise click.ClickException(f"no plugin serves TD_STORAGE_URL {settings.storage_url!r}")
        try:
            await backend.start()
            manager = BackupManager(kernel.db.url, backend, config, settings.data_dir / "tmp")
            return await action(manager)
        finally:
            await backend.close()
            await kernel.db.dispose()

    return asyncio.run(main())


@click.group()
def backup() -> None:
    """Back up and restore the database and every stored object (to the storage backend)."""


@backup.command("create")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def backup_create(as_json: bool) -> None:
    """Dump the database and copy every object into one archive under backups/ in the storage backend."""
    result = _with_manager(lambda m: m.create())
    if as_json:
        click.echo(json.dumps({"key": result.key, "objects": result.objects, "object_bytes": result.object_bytes}))
        return
    click.echo(f"{result.key} ({result.dialect} database, {result.objects} objects, {result.object_bytes} bytes)")


@backup.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def backup_list(as_json: bool) -> None:
    """List the backups in the storage backend, oldest first."""
    items = _with_manager(lambda m: m.list())
    if as_json:
        click.echo(json.dumps([{"key": i.key, "size": i.size} for i in items]))
        return
    for item in items:
        click.echo(f"{item.key}\t{item.size}")


@backup.command("restore")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@click.option("--keep-new-objects", is_flag=True, help="Keep objects stored after the backup was made")
def backup_restore(key: str, yes: bool, keep_new_objects: bool) -> None:
    """Replace the database and objects with backup KEY. Stop every server first."""
    if not yes:
        click.confirm(f"Replace the database and stored objects with {key}?", abort=True)
    result = _with_manager(lambda m: m.restore(key, prune=not keep_new_objects))
    click.echo(f"restored {result.key} ({result.objects} objects, {result.object_bytes} bytes)")


COMMANDS = [backup]
