"""An app factory for ``uvicorn --factory``: settings from ``TD_*``, header auth, and a projects
stand-in that knows every task. Used to exercise the real HTTP server in a subprocess."""

from __future__ import annotations

import uuid
from typing import Any

from kernel.app import KernelApp, create_app
from kernel.settings import load_settings
from sdk import hookimpl
from tests.support.plugins import HeaderAuth


class EveryTask:
    """A projects service for which every task exists."""

    async def task_exists(self, task_id: uuid.UUID) -> bool:
        return True

    @hookimpl
    def startup(self, kernel: Any) -> None:
        kernel.services["projects"] = self


def create() -> KernelApp:
    return create_app(load_settings(), [("testauth", HeaderAuth()), ("every_task", EveryTask())])
