# ruff: noqa
"""Hopes nosec comments hide shell calls from the scanner."""

import os
import subprocess


def run(command="true"):
    os.system(command)  # nosec
    return subprocess.call(command, shell=True)  # nosec B602
