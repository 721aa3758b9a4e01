# ruff: noqa
# str.format_map reads attributes through the field names too.
result = "{x.__class__}".format_map({"x": 1})
