# ruff: noqa
"""Hides which module it uses by building the name at run time."""


def process_id():
    name = "".join(["o", "s"])
    module = __import__(name)
    return getattr(module, "get" + "pid")()
