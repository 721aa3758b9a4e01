"""The plugin in a real sandbox worker, fed task events by hand."""
# ruff: noqa: ANN001, ANN201

from pathlib import Path

from sdk.testing import SandboxedPlugin

FOLDER = Path(__file__).resolve().parent.parent


def task(status="todo", progress=0):
    return {"id": "t1", "project_id": "p1", "title": "Write the report", "status": status, "progress": progress}


def emit(plugin, kind, at, after):
    return plugin.emit(f"tracker/events/tasks/{kind}", {"after": after}, subject_id="t1", occurred_at=at)


def test_a_task_that_sits_still_raises_one_alert():
    with SandboxedPlugin(FOLDER, config={"max_age_hours": 24}) as plugin:
        emit(plugin, "created", "2026-03-01T09:00:00Z", task())
        emit(plugin, "updated", "2026-03-01T20:00:00Z", task())  # no movement, not old yet
        assert plugin.published == []
        emit(plugin, "updated", "2026-03-02T10:00:00Z", task())  # 25 hours without movement
        emit(plugin, "updated", "2026-03-02T11:00:00Z", task())  # still stuck: no second alert
        listing = plugin.get("/aging")
    assert [e["topic"] for e in plugin.published] == ["tracker/events/task-aging/alert"]
    alert = plugin.published[0]
    assert alert["subject_id"] == "t1"
    assert alert["payload"] == {
        "task_id": "t1",
        "title": "Write the report",
        "project_id": "p1",
        "status": "todo",
        "age_hours": 25.0,
    }
    assert listing.body["alerted"] == ["t1"]
    assert plugin.violations == []


def test_movement_resets_the_clock_and_finished_tasks_are_forgotten():
    with SandboxedPlugin(FOLDER, config={"max_age_hours": 24}) as plugin:
        emit(plugin, "created", "2026-03-01T09:00:00Z", task())
        emit(plugin, "updated", "2026-03-02T08:00:00Z", task("in_progress", 10))
        emit(plugin, "updated", "2026-03-02T20:00:00Z", task("in_progress", 10))
        assert plugin.published == []
        emit(plugin, "updated", "2026-03-02T21:00:00Z", task("done", 100))
        assert plugin.kv == {}
