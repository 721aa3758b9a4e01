# ruff: noqa
# Allocating far more memory than the worker may use.
blocks = []
while True:
    blocks.append(bytearray(50 * 1024 * 1024))
