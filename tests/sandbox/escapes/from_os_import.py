# ruff: noqa
# A from-import of os.system.
from os import system

result = system("id")
