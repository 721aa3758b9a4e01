"""``taylordash backup create|list|restore`` as a subprocess, on both databases and both backends."""

from __future__ import annotations

import glob
import json
import shutil

import pytest

from tests.conftest import running
from tests.storage.conftest import ADMIN, VIEWER
from tests.support import services
from tests.support.cli import clean_env, run


def last_json(stdout: str):
    """The JSON a command printed (its last line: plugin import errors may be logged before it)."""
    return json.loads(stdout.strip().splitlines()[-1])


async def snapshot(client, task) -> dict[str, tuple[str, bytes]]:
    items = (await client.get(f"/api/v1/tasks/{task}/attachments", headers=VIEWER)).json()["items"]
    result = {}
    for item in items:
        body = await client.get(f"/api/v1/tasks/{task}/attachments/{item['id']}", headers=VIEWER)
        result[item["id"]] = (item["filename"], body.content)
    return result


async def test_backup_and_restore(make_app, projects, settings, storage_url, database_url, backend, storage_kind):
    if (backend, storage_kind) in {("sqlite", "s3"), ("postgresql", "file")}:
        pytest.skip("each database dump and each object backend is covered by the other two combinations")
    if (
        backend == "postgresql"
        and shutil.which("pg_dump") is None
        and not glob.glob("/usr/lib/postgresql/*/bin/pg_dump")
    ):
        services.unavailable("pg_dump/pg_restore are not installed")
    env = clean_env(
        TD_DATA_DIR=str(settings.data_dir),
        TD_DATABASE_URL=database_url,
        TD_STORAGE_URL=storage_url,
        TD_LOG_LEVEL="warning",
    )
    task = projects.add_task()
    async with running(make_app()) as client:
        for name, data in (("a.txt", b"alpha" * 1000), ("b.bin", bytes(range(256)) * 40)):
            created = await client.post(
                f"/api/v1/tasks/{task}/attachments", files={"file": (name, data)}, headers=ADMIN
            )
            assert created.status_code == 201
        before = await snapshot(client, task)

    made = run("backup", "create", "--json", env=env, timeout=120)
    assert made.returncode == 0, made.stderr
    summary = last_json(made.stdout)
    key = summary["key"]
    assert summary["objects"] == 2

    async with running(make_app()) as client:
        first = next(iter(before))
        assert (await client.delete(f"/api/v1/tasks/{task}/attachments/{first}", headers=ADMIN)).status_code == 204
        later = await client.post(f"/api/v1/tasks/{task}/attachments", files={"file": ("c.txt", b"c")}, headers=ADMIN)
        assert later.status_code == 201
        storage = client._transport.app.kernel.services["storage"]  # type: ignore[attr-defined]
        changed = await snapshot(client, task)
    assert changed != before

    listed = run("backup", "list", "--json", env=env)
    assert [b["key"] for b in last_json(listed.stdout)] == [key]
    restored = run("backup", "restore", key, "--yes", env=env, timeout=120)
    assert restored.returncode == 0, restored.stderr

    async with running(make_app()) as client:
        after = await snapshot(client, task)
        storage = client._transport.app.kernel.services["storage"]  # type: ignore[attr-defined]
        keys = [info.key async for info in storage.list("attachments/")]
    assert after == before
    assert sorted(keys) == sorted(f"attachments/{task}/{aid}" for aid in before)  # c.txt's object pruned
