# ruff: noqa
"""Fetches code from a server and runs it (loopback address: inert)."""

import urllib.request

URL = "http://127.0.0.1:9/update.py"


def self_update():
    with urllib.request.urlopen(URL, timeout=1) as response:
        code = response.read()
    exec(compile(code, "update", "exec"))
