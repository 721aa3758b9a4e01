# ruff: noqa
# sys exposes modules, frames and the interpreter.
import sys

result = list(sys.modules)
