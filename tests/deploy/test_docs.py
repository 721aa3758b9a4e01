"""docs/operations.md names commands, files and settings that exist."""

from __future__ import annotations

import re

import click
import pytest

from kernel.cli import cli
from tests.deploy.conftest import ROOT

DOC = (ROOT / "docs" / "operations.md").read_text()


def commands() -> set[tuple[str, ...]]:
    """``taylordash <command> [<subcommand>]`` as written in the page (also after ``compose run … kernel``)."""
    found = set()
    pattern = r"(?:(?<!-n )(?<!/)taylordash|--rm (?:kernel|migrate)) ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?"
    for match in re.finditer(pattern, DOC):
        found.add(tuple(word for word in match.groups() if word))
    return found


@pytest.mark.parametrize("words", sorted(commands()), ids=" ".join)
def test_commands_exist(words: tuple[str, ...]):
    context = click.Context(cli)
    command = cli.get_command(context, words[0])
    assert command is not None, f"taylordash {words[0]} is not a command"
    if isinstance(command, click.Group) and len(words) > 1:
        assert command.get_command(context, words[1]) is not None, f"taylordash {' '.join(words)} is not a command"


def test_enough_commands_are_checked():
    assert {("db", "upgrade"), ("backup", "create"), ("dlq", "replay"), ("plugins", "remove")} <= commands()


def test_named_files_exist():
    paths = set(re.findall(r"`((?:infra|tests|docs)/[\w./-]+)`", DOC)) | set(re.findall(r"\]\(([\w-]+\.md)\)", DOC))
    assert len(paths) >= 10
    for path in paths:
        if "/certs/" in path:  # made by make-certs.sh next to the folder, never committed
            assert (ROOT / path.split("/certs/")[0] / "make-certs.sh").exists()
            continue
        target = ROOT / path if "/" in path else ROOT / "docs" / path
        assert target.exists(), f"docs/operations.md names {path}, which does not exist"


def test_named_settings_exist(setting_names):
    for name in set(re.findall(r"\bTD_[A-Z0-9_]+[A-Z0-9]", DOC)):
        if name.endswith("__"):
            continue
        assert setting_names.problem(name) is None, setting_names.problem(name)
