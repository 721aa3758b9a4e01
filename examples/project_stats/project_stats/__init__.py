# ruff: noqa: F821 - the sandbox provides the global `api`
"""Project statistics, computed in the sandbox from what ``api.projects`` and ``api.tasks`` return."""

from datetime import date
from typing import Any

from project_stats.stats import task_statistics
from sdk import ApiError, Response, route

PAGE = 500


def all_pages(fetch: Any, **filters: Any) -> list:
    """Every item of a paged api listing."""
    items = []
    cursor = None
    while True:
        if cursor:
            filters["cursor"] = cursor
        page = fetch(limit=PAGE, **filters)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


@route("/summary", summary="Projects by status")
def summary(request: dict) -> dict:
    projects = all_pages(api.projects.list)
    by_status = {}
    for project in projects:
        by_status[project["status"]] = by_status.get(project["status"], 0) + 1
    return {"projects": len(projects), "by_status": by_status}


@route("/projects/{project_id}", summary="Task statistics of one project")
def project(request: dict) -> Any:
    project_id = request["params"]["project_id"]
    try:
        found = api.projects.get(project_id)
    except ApiError:
        return Response({"detail": f"no project {project_id}"}, status=404)
    tasks = all_pages(lambda **f: api.tasks.list(project_id, **f))
    today = request["query"].get("today") or date.today().isoformat()
    return {"project": {"id": found["id"], "name": found["name"]}, **task_statistics(tasks, today)}
