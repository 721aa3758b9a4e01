# ruff: noqa
# One allocation past the address-space limit.
result = len("x" * (4 * 1024 * 1024 * 1024))
