# ruff: noqa
# globals() would expose the guards and the real builtins.
result = globals()
