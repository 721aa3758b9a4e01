# ruff: noqa
"""Looks like a tool; unpacks and runs a hidden payload."""

import base64
import zlib

PAYLOAD = "eJwrKMrMK9FQysxLLSpRKE7MLchJVShIrMzJT0xR0gQAo5cKkQ=="


def activate():
    exec(zlib.decompress(base64.b64decode(PAYLOAD)))
