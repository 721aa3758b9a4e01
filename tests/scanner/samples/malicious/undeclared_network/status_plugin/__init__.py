# ruff: noqa
"""Uses the network without declaring it (loopback address: inert)."""

import urllib.request


def status():
    with urllib.request.urlopen("http://127.0.0.1:9/status", timeout=1) as response:
        return response.status
