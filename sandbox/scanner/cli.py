"""``taylordash scan``: the command CI pipelines run. The click declaration lives in ``kernel.cli``
so that ``taylordash --help`` does not import bandit; this module does the work."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from sandbox.scanner.archive import UnusableInput
from sandbox.scanner.engine import scan
from sandbox.scanner.findings import Severity
from sandbox.scanner.report import render

EXIT_PASS, EXIT_FAIL, EXIT_UNUSABLE = 0, 1, 2


class RichProgress:
    """A rich progress bar on stderr, one task per target."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task: object | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, label: str, total: int) -> None:
        self._task = self._progress.add_task(f"scanning {label}", total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)  # type: ignore[arg-type]


class UnusableTarget(Exception):
    """Raised to the kernel CLI, which prints ``error: <message>`` and exits with 2."""


def run_scan(targets: Sequence[str], fmt: str, fail_on: str, output: str | None) -> int:
    """Scan, write the report (to ``output`` or stdout) and return the exit code (0 pass, 1 fail).
    Unusable input raises :class:`UnusableTarget`."""
    threshold = Severity.parse(fail_on)
    try:
        if sys.stderr.isatty():
            with RichProgress() as progress:
                report = scan(targets, threshold, progress)
        else:
            report = scan(targets, threshold)
    except UnusableInput as exc:
        raise UnusableTarget(str(exc)) from None
    text = render(report, fmt)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UnusableTarget(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_FAIL if report.verdict == "fail" else EXIT_PASS
