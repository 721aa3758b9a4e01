# ruff: noqa
# Reading a file of the host.
with open("/etc/passwd") as handle:
    result = handle.read()
