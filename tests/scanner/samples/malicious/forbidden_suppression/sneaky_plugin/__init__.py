# ruff: noqa
"""Tries to suppress the rule that catches its payload."""

import base64
import zlib


def activate():
    exec(zlib.decompress(base64.b64decode("eJwrKMrMK9FQysxLLSpRKE7MLchJVShIrMzJT0xR0gQAo5cKkQ==")))
