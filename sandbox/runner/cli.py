"""``taylordash sandbox run`` and ``taylordash plugin new``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kernel.cli import CommandError


@click.group()
def sandbox() -> None:
    """The plugin sandbox (RestrictedPython in a resource-limited worker process)."""


@sandbox.command("run")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object")
@click.option("--timeout", type=click.FloatRange(min=0.1, max=600), default=10.0, show_default=True,
              help="Wall-clock seconds before the worker is killed")  # fmt: skip
@click.option("--memory-mb", type=click.IntRange(min=64, max=65536), default=256, show_default=True,
              help="Address-space limit of the worker")  # fmt: skip
@click.option("--permission", "permissions", multiple=True, metavar="P",
              help="Grant the snippet's api this permission (repeatable), e.g. storage:kv")  # fmt: skip
def sandbox_run(file: Path, as_json: bool, timeout: float, memory_mb: int, permissions: tuple[str, ...]) -> None:
    """Run FILE as plugin code in the sandbox and report what happened.

    The snippet runs like a plugin module, with an `api` granting no permission unless --permission
    grants one (storage:kv and events:publish:<topic> work outside a server; projects need one).
    The value it leaves in the variable `result` is reported as JSON. With --json the report is
    {"status", "result", "violations": [{"kind", "detail"}], "stdout", "duration_ms"}.

    Exit codes: 0 ok, 1 error (the snippet raised), 2 bad usage, 3 blocked (the sandbox refused
    something: an import, a dunder, a permission…), 4 contained (a limit stopped it: memory, CPU,
    recursion, output, timeout, crash). See docs/sandbox.md.
    """
    from sandbox.runner.snippet import EXIT_CODES, run_snippet_sync

    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {file}: {exc}") from None
    report = run_snippet_sync(
        source, filename=file.name, timeout=timeout, memory_mb=memory_mb, permissions=list(permissions)
    )
    if as_json:
        click.echo(json.dumps(report, default=str))
    else:
        click.echo(f"status: {report['status']} ({report['duration_ms']:.1f} ms)")
        click.echo(f"result: {json.dumps(report['result'], default=str)}")
        for violation in report["violations"]:
            click.echo(f"violation: {violation['kind']}: {violation['detail']}")
        if report.get("error"):
            click.echo(f"error: {report['error'].get('type')}: {report['error'].get('message')}")
        if report["stdout"]:
            click.echo("stdout:")
            click.echo(report["stdout"], nl=False)
    code = EXIT_CODES[report["status"]]
    if code:
        raise click.exceptions.Exit(code)


@click.group()
def plugin() -> None:
    """Write sandboxed plugins."""


@plugin.command("new")
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to create the package folder")  # fmt: skip
def plugin_new(name: str, directory: Path) -> None:
    """Create a plugin package NAME: manifest, code, tests and README.

    The package passes `taylordash scan` and its tests (`pytest NAME/tests`) as created; build it
    with `python -m build` or zip the folder and upload it through the registry. Exit codes: 0
    created, 2 bad name or the folder exists.
    """
    from sdk.scaffold import ScaffoldError, create

    try:
        path = create(name, directory)
    except ScaffoldError as exc:
        raise CommandError(str(exc)) from None
    click.echo(f"created {path}")
