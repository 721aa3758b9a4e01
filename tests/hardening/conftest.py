"""Private services the hardening tests may stop, kill and start again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hardening.support import PrivatePostgres
from tests.support.services import PrivateMosquitto


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().start()
    yield server
    server.close()


@pytest.fixture
def private_broker() -> Iterator[PrivateMosquitto]:
    broker = PrivateMosquitto().start()
    yield broker
    broker.close()
