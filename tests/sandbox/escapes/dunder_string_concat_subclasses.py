# ruff: noqa
# Reach __subclasses__ through getattr chains built from strings.
d = "__"
cls = getattr(getattr(1, d + "class" + d), d + "base" + d)
result = [c for c in getattr(cls, d + "subclasses" + d)()]
