# ruff: noqa
# Patching a sandbox-provided object with setattr().
import json

setattr(json, "dumps", len)
result = "patched"
