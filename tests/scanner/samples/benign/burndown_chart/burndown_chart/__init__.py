# ruff: noqa
"""A burndown chart: remaining open tasks per day."""

from datetime import date, timedelta


def series(api, project_id, days=14):
    tasks = api.tasks.list(project_id=project_id)
    today = date.today()
    points = []
    for offset in range(days, -1, -1):
        day = (today - timedelta(days=offset)).isoformat()
        remaining = sum(1 for t in tasks if not t.get("completed_at") or t["completed_at"][:10] > day)
        points.append({"day": day, "remaining": remaining})
    return points
