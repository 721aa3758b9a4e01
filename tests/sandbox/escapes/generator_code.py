# ruff: noqa
# gi_code leads to code objects and their constants.
g = (x for x in [1])
result = getattr(g, "gi_code")
