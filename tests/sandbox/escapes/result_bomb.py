# ruff: noqa
# Returning a result far larger than the output cap.
result = ["y" * 1000] * 100000
