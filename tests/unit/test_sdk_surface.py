"""Every public name of the sdk resolves, and says what it is for."""

from __future__ import annotations

import pytest

import sdk

NAMES = [name for name in sdk.__all__ if name not in ("MANIFEST_FILE", "hookimpl")]


@pytest.mark.parametrize("name", NAMES)
def test_public_name_resolves_with_a_docstring(name: str) -> None:
    value = getattr(sdk, name)
    assert (value.__doc__ or "").strip(), f"sdk.{name} has no docstring of its own"


def test_constants_and_the_hook_marker() -> None:
    assert sdk.MANIFEST_FILE == "taylordash-plugin.toml"
    assert sdk.hookimpl.project_name == "taylordash"
