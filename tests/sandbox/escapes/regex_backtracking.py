# ruff: noqa
# Catastrophic backtracking in a regular expression.
import re

result = re.match("(a+)+$", "a" * 40 + "b")
