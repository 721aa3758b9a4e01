# ruff: noqa
# string.Formatter performs the same attribute lookups as str.format.
import string

result = string.Formatter().format("{0.__class__}", 1)
