"""Pure statistics over task documents (no api calls: easy to test, cheap to run)."""

from collections import Counter

OPEN = ("todo", "in_progress", "blocked")


def task_statistics(tasks: list, today: str) -> dict:
    """Counts by status, mean progress, open and overdue tasks; ``today`` is an ISO date."""
    by_status = Counter(task["status"] for task in tasks)
    open_tasks = [task for task in tasks if task["status"] in OPEN]
    overdue = [task for task in open_tasks if task.get("due_date") and task["due_date"] < today]
    progress = [task.get("progress") or 0 for task in tasks]
    return {
        "tasks": len(tasks),
        "by_status": dict(sorted(by_status.items())),
        "open": len(open_tasks),
        "overdue": sorted(task["title"] for task in overdue),
        "mean_progress": round(sum(progress) / len(progress), 1) if progress else 0.0,
    }
