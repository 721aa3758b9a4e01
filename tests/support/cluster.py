"""Several ``taylordash serve`` processes of one deployment: a shared database, broker, storage and
secret, each instance with its own port and MQTT client id, consuming in one share group."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from builtin_plugins.auth.audit import Actor
from builtin_plugins.auth.config import AuthSettings
from builtin_plugins.auth.service import AuthService
from kernel.app import Kernel
from kernel.settings import load_settings
from tests.auth.conftest import FAST_AUTH, PASSWORD
from tests.auth.conftest import TEST_SECRET as SECRET
from tests.support.cli import clean_env, serving

__all__ = ["PASSWORD", "RoundRobin", "cluster", "deployment_env", "instance_env", "prepare", "unique_group"]


def deployment_env(
    database_url: str, broker: tuple[str, int], root: Path, group: str, **settings: str
) -> dict[str, str]:
    """Settings every instance of the deployment shares (``TD_*`` names, as an operator sets them)."""
    auth = {f"TD_PLUGINS__AUTH__{key.upper()}": str(value) for key, value in FAST_AUTH.items()}
    return {
        "TD_DATABASE_URL": database_url,
        "TD_BUS_URL": f"mqtt://{broker[0]}:{broker[1]}",
        "TD_BUS_SHARE_GROUP": group,
        "TD_SECRET_KEY": SECRET,
        "TD_DATA_DIR": str(root / "data"),
        "TD_STORAGE_URL": f"file://{root / 'objects'}",
        "TD_LOG_LEVEL": "warning",
        "TD_MIGRATE_ON_START": "false",
        "TD_PLUGINS__AUTH__CACHE_SECONDS": "300",
        **auth,
        **settings,
    }


def instance_env(shared: Mapping[str, str], name: str) -> dict[str, str]:
    """The environment of instance ``name``: the deployment's settings plus its own client id."""
    return clean_env(**shared, TD_BUS_CLIENT_ID=f"{shared['TD_BUS_SHARE_GROUP']}-{name}")


async def prepare(database_url: str, data_dir: Path, users: Mapping[str, str]) -> dict[str, str]:
    """Migrate the shared database (what the one-shot ``taylordash db upgrade`` does in a deployment)
    and create ``users`` (username -> role); their ids by username."""
    kernel = Kernel(load_settings(database_url=database_url, data_dir=data_dir, secret_key=SECRET))
    try:
        await kernel.prepare_schema(migrate=True)
        auth = AuthService(kernel, AuthSettings(**FAST_AUTH))
        return {
            name: str((await auth.users.create(name, PASSWORD, role, Actor("cli"))).id) for name, role in users.items()
        }
    finally:
        await kernel.db.dispose()


@contextmanager
def cluster(shared: Mapping[str, str], names: list[str], logs: Path) -> Iterator[list[str]]:
    """Start one ``taylordash serve`` per name (in turn, each ready on ``/health/ready``); their base URLs."""
    with ExitStack() as stack:
        started = []
        for name in names:
            server = serving(instance_env(shared, name), log=logs / f"{name}.log", ready_path="/health/ready")
            started.append(stack.enter_context(server))
        yield started


def unique_group(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class RoundRobin:
    """Hands out the instances' clients in turn: a client-side load balancer."""

    def __init__(self, clients: list[Any]) -> None:
        self.clients = clients
        self._cycle = itertools.cycle(clients)

    def next(self) -> Any:
        return next(self._cycle)
