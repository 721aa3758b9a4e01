# ruff: noqa
# Reaching the traceback through getattr with a computed name.
try:
    1 / 0
except Exception as exc:
    tb = getattr(exc, "_" * 2 + "traceback" + "_" * 2)
    result = tb
