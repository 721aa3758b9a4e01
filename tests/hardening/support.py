"""Helpers shared by the hardening tests: credentials minted offline, the way an operator's CLI does."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.service import AuthService
from kernel.app import Kernel
from kernel.settings import Settings, load_settings
from tests.support import services

PASSWORD = "correct horse battery staple"
# Cheap hashing for tests only; the defaults stay in production.
FAST_AUTH: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
SECRET = "hardening-test-secret-0123456789abcdef"


@dataclass(frozen=True)
class Credentials:
    """An API token per role (``td_…``), with the ids of the users holding them."""

    admin_token: str
    viewer_token: str
    admin_id: str
    viewer_id: str

    def headers(self, role: str) -> dict[str, str]:
        token = self.admin_token if role == "admin" else self.viewer_token
        return {"Authorization": f"Bearer {token}"}


def hardening_settings(**values: Any) -> Settings:
    """Settings for a test kernel: fast password hashing, a fixed secret, quiet logs."""
    plugins = values.pop("plugins", {})
    plugins = {**plugins, "auth": {**FAST_AUTH, **plugins.get("auth", {})}}
    values.setdefault("log_level", "warning")
    values.setdefault("migrate_on_start", True)
    return load_settings(plugins=plugins, secret_key=SECRET, **values)


async def _mint(settings: Settings) -> Credentials:
    kernel = Kernel(settings)
    try:
        await kernel.prepare_schema(migrate=True)
        auth = AuthService(kernel, AuthSettings.model_validate(settings.plugin_settings("auth")))
        actor = Actor("cli", name="hardening", role="admin")
        admin = await auth.users.create("hardening-admin", PASSWORD, "admin", actor)
        viewer = await auth.users.create("hardening-viewer", PASSWORD, "viewer", actor)
        _, admin_token = await auth.api_tokens.create(admin.id, "contract", actor, actor_is_admin=True)
        _, viewer_token = await auth.api_tokens.create(viewer.id, "contract", actor, actor_is_admin=True)
        return Credentials(admin_token, viewer_token, str(admin.id), str(viewer.id))
    finally:
        await kernel.db.dispose()


def mint_credentials(settings: Settings) -> Credentials:
    """Migrate the database of ``settings`` and create an admin and a viewer with an API token each
    (what ``taylordash users create`` and ``taylordash tokens create`` do)."""
    return asyncio.run(_mint(settings))


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb into a temporary folder, a free port) that a
    test may stop and start again; the machine's server is shared and is never touched."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
        if initdb is None:
            services.unavailable("no initdb binary to start a private PostgreSQL")
        self.bindir = Path(str(initdb)).parent
        self.root = Path(tempfile.mkdtemp(prefix="td-pg-hardening-"))
        self.data = self.root / "data"
        self.port = services.free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.prefix, str(initdb), "-D", str(self.data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-l", str(self.root / "log"), "-w", "-o", options, "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and shuts down cleanly; ``immediate`` is a crash (recovery at start)."""
        if self.running:
            self._ctl("-m", mode, "-w", "stop")
            self.running = False

    def create_database(self, name: str) -> str:
        async def create() -> None:
            conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres")
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class Served:
    """``taylordash serve`` as a child process on a free port, configured through the environment."""

    def __init__(self, settings: Settings, log: Path, *args: str) -> None:
        self.port = services.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
        env.update(
            TD_DATABASE_URL=settings.database_url,
            TD_BUS_URL=settings.bus_url,
            TD_DATA_DIR=str(settings.data_dir),
            TD_SECRET_KEY=SECRET,
            TD_LOG_LEVEL="warning",
            TD_PLUGINS__AUTH__ARGON2_TIME_COST="1",
            TD_PLUGINS__AUTH__ARGON2_MEMORY_KIB="64",
            TD_PLUGINS__AUTH__ARGON2_PARALLELISM="1",
        )
        taylordash = Path(sys.executable).parent / "taylordash"
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [str(taylordash), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, seconds: float = 60.0) -> Served:
        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.base_url + "/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready in {seconds} s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
