# ruff: noqa
"""Reaches eval through getattr on builtins so a reader does not see it."""

import builtins


def calculate():
    evaluate = getattr(builtins, "ev" + "al")
    return evaluate("1 + 1")
