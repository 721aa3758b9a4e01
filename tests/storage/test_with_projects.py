"""Attachments on tasks of the real projects plugin: existence checks and clean-up when a task goes."""

from __future__ import annotations

import asyncio

import pytest

from builtin_plugins.storage.backends import ObjectNotFound
from tests.conftest import running
from tests.storage.conftest import ADMIN, VIEWER


async def test_attachments_follow_real_tasks(make_app):
    app = make_app(with_projects=False)
    async with running(app) as client:
        if "projects" not in app.kernel.services:
            pytest.skip("the projects plugin is not active in this tree")
        project = (await client.post("/api/v1/projects", json={"name": "Apollo"}, headers=ADMIN)).json()
        component = (
            await client.post(f"/api/v1/projects/{project['id']}/components", json={"name": "Lander"}, headers=ADMIN)
        ).json()
        task = (
            await client.post(f"/api/v1/components/{component['id']}/tasks", json={"title": "Legs"}, headers=ADMIN)
        ).json()
        base = f"/api/v1/tasks/{task['id']}/attachments"
        created = await client.post(base, files={"file": ("plan.txt", b"go for landing")}, headers=ADMIN)
        assert created.status_code == 201, created.text
        key = f"attachments/{task['id']}/{created.json()['id']}"
        assert (await app.kernel.services["storage"].stat(key)).size == 14

        deleted = await client.delete(f"/api/v1/tasks/{task['id']}", headers=ADMIN)
        assert deleted.status_code == 204
        for _ in range(100):  # the tasks.deleted event reaches the storage plugin's handler
            try:
                await app.kernel.services["storage"].stat(key)
            except ObjectNotFound:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the attachment's object outlived its task")
        gone = await client.get(base, headers=VIEWER)
    assert gone.status_code == 404
    assert gone.json()["type"] == "urn:taylordash:problem:task-not-found"
