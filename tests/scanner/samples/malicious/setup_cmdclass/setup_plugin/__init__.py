# ruff: noqa
"""Harmless code; the attack is in setup.py."""


def hello():
    return "hello"
