"""``taylordash events tail`` and ``taylordash dlq …``: through the console script's ``main()``
in-process (each subprocess would import every plugin again), and as real subprocesses where
signals and stderr matter."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernel.app import Kernel
from kernel.bus.store import HANDLER_FAILED, MALFORMED, DeadLetter
from kernel.cli import main
from kernel.settings import load_settings
from sdk import Event
from tests.support.cli import TAYLORDASH, clean_env, run


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``cli(*args)`` runs ``taylordash args`` through ``kernel.cli.main`` with ``env``'s settings."""
    for name, value in env.items():
        if name.startswith("TD_"):
            monkeypatch.setenv(name, value)

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["taylordash", *args])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def env(tmp_path: Path, fresh_database_url: str) -> dict[str, str]:
    environment = clean_env(
        TD_DATA_DIR=str(tmp_path / "data"), TD_DATABASE_URL=fresh_database_url, TD_LOG_LEVEL="warning"
    )
    asyncio.run(_migrate(environment))
    return environment


async def _migrate(env: dict[str, str]) -> None:
    kernel = Kernel(load_settings(data_dir=env["TD_DATA_DIR"], database_url=env["TD_DATABASE_URL"]))
    try:
        await kernel.migrator().upgrade()
    finally:
        await kernel.db.dispose()


async def seed(env: dict[str, str], events: list[Event], letters: list[DeadLetter]) -> None:
    """Write mirror rows and dead letters the way the processor does."""
    settings = load_settings(data_dir=env["TD_DATA_DIR"], database_url=env["TD_DATABASE_URL"], log_level="warning")
    kernel = Kernel(settings)
    try:
        await kernel.start(serve_bus=False)
        store = kernel.bus.processor.store
        async with kernel.bus.processor.conn.begin() as conn:
            if events:
                await store.accept(conn, [(e, False) for e in events], owner="seed", lease_seconds=1)
            if letters:
                await store.dead_letter(conn, letters)
    finally:
        await kernel.stop()


def _events(count: int) -> list[Event]:
    types = ["projects.created", "tasks.created", "tasks.updated"]
    return [
        Event.create(
            type=types[n % 3], source="t", subject_id=f"s{n}", payload={"n": n}, actor={"id": "ann", "role": "admin"}
        )
        for n in range(count)
    ]


def test_events_tail(env, cli):
    asyncio.run(seed(env, _events(6), []))
    shown = cli("events", "tail", "-n", "4", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line)["payload"]["n"] for line in shown.stdout.splitlines()] == [2, 3, 4, 5]
    typed = cli("events", "tail", "--type", "tasks.created")
    assert typed.returncode == 0 and len(typed.stdout.splitlines()) == 2
    assert "tasks.created" in typed.stdout and "actor=ann" in typed.stdout
    bad = cli("events", "tail", "--topic", "a/#/b")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_events_tail_follow(env):
    asyncio.run(seed(env, _events(1), []))
    proc = subprocess.Popen(
        [TAYLORDASH, "events", "tail", "-f", "--json", "-n", "1"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert json.loads(proc.stdout.readline())["payload"]["n"] == 0
        time.sleep(1.0)  # the follower has taken its starting point
        later = Event.create(type="tasks.deleted", source="t", payload={"n": 99})
        asyncio.run(seed(env, [later], []))
        assert json.loads(proc.stdout.readline())["id"] == str(later.id)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_dlq_list_replay_discard(env, cli):
    fixed = Event.create(type="tasks.created", source="t", payload={"n": 1})
    lost = Event.create(type="tasks.created", source="t", payload={"n": 2})
    letters = [
        DeadLetter(MALFORMED, fixed.topic, "was malformed", raw=fixed.to_json()),  # a since-fixed producer
        DeadLetter(HANDLER_FAILED, lost.topic, "boom", lost, lost.id, "gone.handler", "Traceback ...", 5),
    ]
    asyncio.run(seed(env, [], letters))
    listed = cli("dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = {item["reason"]: item for item in json.loads(listed.stdout)["items"]}
    assert set(items) == {"malformed", "handler-failed"}
    human = cli("dlq", "list", "--reason", "handler-failed").stdout
    assert "gone.handler" in human and "x5" in human and "malformed" not in human

    replayed = cli("dlq", "replay", items["malformed"]["id"])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"replayed {items['malformed']['id']}" in replayed.stdout
    tail = cli("events", "tail", "--json")
    assert json.loads(tail.stdout.splitlines()[-1])["id"] == str(fixed.id)  # mirrored by the replay

    failed = cli("dlq", "replay", items["handler-failed"]["id"])
    assert failed.returncode == 1 and "failed" in failed.stdout and "not registered" in failed.stdout

    assert cli("dlq", "replay").returncode == 2

    discarded = cli("dlq", "discard", "--all", "--reason", "handler-failed", "--json")
    assert discarded.returncode == 0 and json.loads(discarded.stdout) == {"discarded": 1}
    assert "empty" in cli("dlq", "list").stdout


@pytest.mark.parametrize("backend", ["sqlite"])
def test_errors_are_one_line_with_an_exit_code(env, cli):
    missing = run("dlq", "replay", str(uuid.uuid4()), env=env)
    assert missing.returncode == 3 and missing.stderr.startswith("error: no dead letter with id")
    assert missing.stderr.count("\n") == 1
    usage = cli("dlq", "discard")
    assert usage.returncode == 2 and usage.stderr.startswith("error: name the entries")
