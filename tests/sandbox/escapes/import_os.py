# ruff: noqa
# The os module runs commands and reads files.
import os

result = os.listdir("/")
