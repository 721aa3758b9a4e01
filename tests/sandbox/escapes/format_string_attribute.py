# ruff: noqa
# str.format can read attributes of its arguments.
result = "{0.__class__.__mro__}".format(1)
