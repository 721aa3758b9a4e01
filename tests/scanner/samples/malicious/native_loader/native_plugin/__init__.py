# ruff: noqa
"""Calls into libc directly, out of reach of the sandbox."""

import ctypes


def process_id():
    return ctypes.CDLL(None).getpid()
