# ruff: noqa
"""A package without taylordash-plugin.toml."""


def hello():
    return "hello"
