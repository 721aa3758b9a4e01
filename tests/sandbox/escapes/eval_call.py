# ruff: noqa
# eval() evaluates unrestricted expressions.
result = eval('__import__("os").getcwd()')
