"""Helpers for the registry tests: packages built from the scanner samples, and authenticated clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scanner.builders import SAMPLES, build
from tests.support.plugins import HeaderAuth

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}


def plugins() -> list[tuple[str, object]]:
    return [("testauth", HeaderAuth())]


@pytest.fixture
def package(tmp_path: Path):
    """``package("benign/velocity_tool", "wheel")`` -> (file name, bytes)."""

    def make(sample: str, kind: str = "wheel") -> tuple[str, bytes]:
        path = build(kind, SAMPLES / sample, tmp_path / sample.replace("/", "-") / kind)
        return path.name, path.read_bytes()

    return make


async def upload(client, name_and_bytes: tuple[str, bytes], headers: dict[str, str] = ADMIN):
    name, data = name_and_bytes
    return await client.post(
        "/api/v1/plugins", files={"file": (name, data, "application/octet-stream")}, headers=headers
    )
