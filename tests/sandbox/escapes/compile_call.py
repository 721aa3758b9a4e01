# ruff: noqa
# compile() produces unrestricted code objects.
code = compile("import os", "x", "exec")
result = code
