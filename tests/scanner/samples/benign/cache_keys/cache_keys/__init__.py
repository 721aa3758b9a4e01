# ruff: noqa
"""Caches project summaries in the plugin's key-value store."""

import hashlib
import json


def cache_key(project):
    return hashlib.sha1(json.dumps(project, sort_keys=True).encode()).hexdigest()


def summary(api, project_id):
    project = api.projects.get(project_id)
    key = cache_key(project)
    cached = api.kv.get(key)
    if cached is None:
        cached = {"name": project["name"], "tasks": project.get("task_count", 0)}
        api.kv.set(key, cached)
    return cached
