# ruff: noqa
# Reaching the RPC channel behind the api object.
channel = api.projects.list.__self__
result = channel
