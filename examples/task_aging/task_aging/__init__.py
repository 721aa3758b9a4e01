# ruff: noqa: F821 - the sandbox provides the global `api`
"""Task aging: remembers when each open task last moved and alerts once when it has sat too long.

Every task event updates the task's entry in the plugin's key-value store; then every watched task
is checked against the event's time, so the clock is the event stream itself. An alert is published
on ``tracker/events/task-aging/alert`` once per task until the task moves again.
"""

from datetime import datetime, timedelta

from sdk import on_event, route

OPEN = ("todo", "in_progress", "blocked")
DEFAULT_MAX_AGE_HOURS = 72


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


@on_event("tracker/events/tasks/+")
def track(event: dict) -> None:
    task = (event["payload"] or {}).get("after")
    key = "task:" + event["subject_id"]
    if event["type"] == "tasks.deleted" or not task or task["status"] not in OPEN:
        api.kv.delete(key)
    else:
        previous = api.kv.get(key)
        moved = previous is None or previous["status"] != task["status"] or previous["progress"] != task["progress"]
        api.kv.set(
            key,
            {
                "title": task["title"],
                "project_id": task["project_id"],
                "status": task["status"],
                "progress": task["progress"],
                "since": event["occurred_at"] if moved else previous["since"],
                "alerted": False if moved else previous["alerted"],
            },
        )
    check_ages(parse(event["occurred_at"]))


def check_ages(now: datetime) -> None:
    limit = timedelta(hours=api.config.get().get("max_age_hours", DEFAULT_MAX_AGE_HOURS))
    for key in api.kv.keys("task:"):
        entry = api.kv.get(key)
        age = now - parse(entry["since"])
        if entry["alerted"] or age < limit:
            continue
        api.events.publish(
            "tracker/events/task-aging/alert",
            {
                "task_id": key[len("task:") :],
                "title": entry["title"],
                "project_id": entry["project_id"],
                "status": entry["status"],
                "age_hours": round(age.total_seconds() / 3600, 2),
            },
            key[len("task:") :],
        )
        entry["alerted"] = True
        api.kv.set(key, entry)


@route("/aging", summary="Open tasks the plugin watches, oldest first, and those it alerted about")
def aging(request: dict) -> dict:
    entries = []
    for key in api.kv.keys("task:"):
        entry = api.kv.get(key)
        entry["task_id"] = key[len("task:") :]
        entries.append(entry)
    entries.sort(key=lambda e: e["since"])
    return {"watched": entries, "alerted": [e["task_id"] for e in entries if e["alerted"]]}
