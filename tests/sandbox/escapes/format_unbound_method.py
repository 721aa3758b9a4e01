# ruff: noqa
# str.format reached through the str type, not an instance.
fmt = str.format
result = fmt("{0.__class__}", 1)
