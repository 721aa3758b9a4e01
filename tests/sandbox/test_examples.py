"""The example plugins: scanned clean, installed through the registry API, enabled and exercised end
to end in a running kernel; their own sdk.testing tests pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kernel.app import create_app
from tests.conftest import running
from tests.sandbox.conftest import ADMIN, EXAMPLES, VIEWER, eventually, install, plugins, sandbox_settings
from tests.support.cli import clean_env, run

PROJECT_STATS = EXAMPLES / "project_stats"
TASK_AGING = EXAMPLES / "task_aging"


def test_examples_scan_clean_and_their_own_tests_pass(tmp_path: Path):
    env = clean_env(TD_DATA_DIR=str(tmp_path / "data"))
    scanned = run("scan", str(PROJECT_STATS), str(TASK_AGING), env=env)
    assert scanned.returncode == 0, scanned.stdout
    assert scanned.stdout.count(": PASS") == 2
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "project_stats/tests", "task_aging/tests"],
        cwd=EXAMPLES, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "5 passed" in tests.stdout


async def _project_with_tasks(client, name: str, tasks: list[dict]) -> tuple[str, list[dict]]:
    project = await client.post("/api/v1/projects", json={"name": name, "status": "active"}, headers=ADMIN)
    assert project.status_code == 201, project.text
    component = await client.post(
        f"/api/v1/projects/{project.json()['id']}/components", json={"name": "Work"}, headers=ADMIN
    )
    assert component.status_code == 201, component.text
    created = []
    for task in tasks:
        answer = await client.post(f"/api/v1/components/{component.json()['id']}/tasks", json=task, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        created.append(answer.json())
    return project.json()["id"], created


async def test_project_stats_end_to_end(make_settings, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, PROJECT_STATS, tmp_path)
        apollo, _ = await _project_with_tasks(
            client,
            "Apollo",
            [
                {"title": "Engine", "status": "done"},
                {"title": "Capsule", "status": "in_progress", "progress": 50, "due_date": "2020-01-01"},
                {"title": "Launch pad", "status": "todo", "due_date": "2999-01-01"},
            ],
        )
        await client.post("/api/v1/projects", json={"name": "Mercury", "status": "completed"}, headers=ADMIN)

        summary = await client.get("/api/v1/x/project-stats/summary", headers=VIEWER)
        assert summary.status_code == 200, summary.text
        assert summary.json() == {"projects": 2, "by_status": {"active": 1, "completed": 1}}

        stats = await client.get(f"/api/v1/x/project-stats/projects/{apollo}", headers=VIEWER)
        assert stats.status_code == 200, stats.text
        assert stats.json() == {
            "project": {"id": apollo, "name": "Apollo"},
            "tasks": 3,
            "by_status": {"done": 1, "in_progress": 1, "todo": 1},
            "open": 2,
            "overdue": ["Capsule"],
            "mean_progress": 50.0,
        }
        missing = await client.get("/api/v1/x/project-stats/projects/00000000-0000-4000-8000-000000000000",
                                   headers=VIEWER)  # fmt: skip
        assert missing.status_code == 404
        refused = await client.get("/api/v1/x/project-stats/summary")
        assert refused.status_code == 401


async def test_task_aging_end_to_end(make_settings, tmp_path: Path):
    app = create_app(make_settings(plugins=sandbox_settings()), plugins(), configure_logs=False)
    async with running(app) as client:
        await install(client, TASK_AGING, tmp_path, kind="wheel")
        configured = await client.put("/api/v1/plugins/task-aging/config", json={"max_age_hours": 0}, headers=ADMIN)
        assert configured.status_code == 200, configured.text
        _, (stuck, finished) = await _project_with_tasks(
            client, "Gemini", [{"title": "Stuck task"}, {"title": "Finished task", "status": "done"}]
        )

        async def alerts() -> list:
            page = await client.get("/api/v1/events", params={"type": "task-aging.alert"}, headers=ADMIN)
            return page.json()["items"]

        found = await eventually(alerts)
        assert [a["subject_id"] for a in found] == [stuck["id"]]
        assert found[0]["topic"] == "tracker/events/task-aging/alert"
        assert found[0]["source"] == "task-aging"
        assert found[0]["payload"]["title"] == "Stuck task" and found[0]["payload"]["status"] == "todo"

        listing = await client.get("/api/v1/x/task-aging/aging", headers=VIEWER)
        assert listing.status_code == 200
        assert listing.json()["alerted"] == [stuck["id"]]
        assert finished["id"] not in {e["task_id"] for e in listing.json()["watched"]}

        moved = await client.patch(f"/api/v1/tasks/{stuck['id']}", json={"status": "done"}, headers=ADMIN)
        assert moved.status_code == 200, moved.text

        async def forgotten() -> bool:
            body = (await client.get("/api/v1/x/task-aging/aging", headers=VIEWER)).json()
            return body["watched"] == []

        await eventually(forgotten)
