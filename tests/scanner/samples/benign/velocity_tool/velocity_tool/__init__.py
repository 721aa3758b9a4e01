# ruff: noqa
"""Team velocity: tasks completed per week, with mean and spread."""

from velocity_tool.stats import summary


def velocity(api, project_id):
    done = [t for t in api.tasks.list(project_id=project_id) if t["status"] == "done"]
    weeks = {}
    for task in done:
        week = task["completed_at"][:8]
        weeks[week] = weeks.get(week, 0) + 1
    return summary(list(weeks.values()))
