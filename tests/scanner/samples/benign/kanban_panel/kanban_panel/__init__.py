# ruff: noqa
"""A kanban panel: tasks grouped by status."""

from collections import defaultdict

COLUMNS = ("todo", "doing", "done")


def board(api, project_id):
    columns = defaultdict(list)
    for task in api.tasks.list(project_id=project_id):
        columns[task["status"]].append(task["title"])
    project = api.projects.get(project_id)
    return {"title": project["name"], "columns": [{"status": c, "tasks": columns[c]} for c in COLUMNS]}
