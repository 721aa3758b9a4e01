"""The plugin in a real sandbox worker, fed projects and tasks in memory."""
# ruff: noqa: ANN201

from pathlib import Path

from sdk.testing import SandboxedPlugin

FOLDER = Path(__file__).resolve().parent.parent
PROJECTS = [
    {"id": "p1", "name": "Apollo", "status": "active"},
    {"id": "p2", "name": "Gemini", "status": "active"},
    {"id": "p3", "name": "Mercury", "status": "completed"},
]
TASKS = [
    {"id": "t1", "project_id": "p1", "title": "Engine", "status": "done", "progress": 100, "due_date": "2026-01-10"},
    {
        "id": "t2",
        "project_id": "p1",
        "title": "Capsule",
        "status": "in_progress",
        "progress": 40,
        "due_date": "2026-01-01",
    },
    {"id": "t3", "project_id": "p1", "title": "Launch pad", "status": "todo", "progress": 0, "due_date": None},
    {"id": "t4", "project_id": "p2", "title": "Docking", "status": "todo", "progress": 0, "due_date": "2026-01-01"},
]


def test_summary_counts_projects_by_status():
    with SandboxedPlugin(FOLDER, projects=PROJECTS, tasks=TASKS) as plugin:
        answer = plugin.get("/summary")
    assert answer.status == 200, answer
    assert answer.body == {"projects": 3, "by_status": {"active": 2, "completed": 1}}
    assert plugin.violations == []


def test_project_statistics():
    with SandboxedPlugin(FOLDER, projects=PROJECTS, tasks=TASKS) as plugin:
        answer = plugin.get("/projects/p1", query={"today": "2026-01-05"})
        missing = plugin.get("/projects/nope")
    assert answer.body == {
        "project": {"id": "p1", "name": "Apollo"},
        "tasks": 3,
        "by_status": {"done": 1, "in_progress": 1, "todo": 1},
        "open": 2,
        "overdue": ["Capsule"],
        "mean_progress": 46.7,
    }
    assert missing.status == 404


def test_without_the_permission_the_sandbox_refuses():
    with SandboxedPlugin(FOLDER, projects=PROJECTS, permissions=["http:route"]) as plugin:
        answer = plugin.get("/summary")
    assert answer.status == 502 and answer.outcome == "blocked"
    assert plugin.violations[0]["kind"] == "permission"
