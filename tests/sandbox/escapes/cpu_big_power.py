# ruff: noqa
# A single huge integer computation in C, where Python signal handlers cannot run.
result = 7 ** (10**9)
