# ruff: noqa
# The __builtins__ mapping holds the unrestricted import machinery.
result = __builtins__["__import__"]("os")
