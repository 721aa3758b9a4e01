# ruff: noqa
# An api call the manifest does not grant.
result = api.projects.list()
