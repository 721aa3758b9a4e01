"""The status panel is static: its page lives in ``panels/status/`` and talks to the dashboard
through the postMessage bridge. The module exists because every plugin names an entry module."""

PANELS = ("status",)
