# ruff: noqa
"""Harmless code under a name that imitates requests."""


def get(url):
    return url
