"""Fixtures of the storage tests: a moto S3 server on loopback, both storage backends, and a
stand-in for the projects plugin's service (task existence is all attachments ask of it)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from kernel.app import KernelApp, create_app
from kernel.plugins import BUILTIN_PLUGINS
from kernel.settings import Settings
from sdk import hookimpl
from tests.support import services
from tests.support.plugins import HeaderAuth

STORAGE_KINDS = ("file", "s3")
ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}


class StandInProjects:
    """Answers ``task_exists`` from a set of task ids the test creates."""

    def __init__(self) -> None:
        self.tasks: set[uuid.UUID] = set()

    def add_task(self) -> uuid.UUID:
        task_id = uuid.uuid4()
        self.tasks.add(task_id)
        return task_id

    async def task_exists(self, task_id: uuid.UUID) -> bool:
        return task_id in self.tasks


class StandInProjectsPlugin:
    """Registers a :class:`StandInProjects` as ``kernel.services["projects"]`` while the app runs,
    and hands the real service back at shutdown for the projects plugin to close."""

    def __init__(self, projects: StandInProjects) -> None:
        self.projects = projects
        self.replaced: Any = None

    @hookimpl
    def startup(self, kernel: Any) -> None:
        self.replaced = kernel.services.get("projects")
        kernel.services["projects"] = self.projects

    @hookimpl
    def shutdown(self, kernel: Any) -> None:
        if self.replaced is not None:
            kernel.services["projects"] = self.replaced


class MotoServer:
    """moto's S3 server on a loopback port; each test gets its own bucket."""

    def __init__(self) -> None:
        self.port = services.free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not services._wait("127.0.0.1", self.port, 30):
            self.stop()
            raise RuntimeError("moto server did not start")

    def url(self, bucket: str) -> str:
        return f"s3://testing:testing@127.0.0.1:{self.port}/{bucket}?secure=false"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(params=STORAGE_KINDS)
def storage_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def storage_url(storage_kind: str, request: pytest.FixtureRequest, tmp_path) -> str:
    if storage_kind == "file":
        return f"file://{tmp_path / 'objects'}"
    moto: MotoServer = request.getfixturevalue("moto")
    return moto.url(f"td-{uuid.uuid4().hex[:16]}")


@pytest.fixture
def projects() -> StandInProjects:
    return StandInProjects()


@pytest.fixture
def storage_settings(make_settings: Callable[..., Settings], storage_url: str) -> Callable[..., Settings]:
    """Settings for the current database and storage backend; keyword arguments become storage settings."""

    def make(**storage: Any) -> Settings:
        return make_settings(storage_url=storage_url, plugins={"storage": storage})

    return make


@pytest.fixture
def make_app(storage_settings: Callable[..., Settings], projects: StandInProjects) -> Callable[..., KernelApp]:
    """The real app with header auth and the stand-in projects service."""

    def make(with_projects: bool = True, builtins: Sequence[str] = BUILTIN_PLUGINS, **storage: Any) -> KernelApp:
        plugins: list[tuple[str, object]] = [("testauth", HeaderAuth())]
        if with_projects:
            plugins.append(("standin_projects", StandInProjectsPlugin(projects)))
        return create_app(storage_settings(**storage), plugins, builtins=builtins, configure_logs=False)

    return make
