# ruff: noqa
# Replacing a function on an allowed module, to affect the worker.
import json

json.loads = len
result = "patched"
