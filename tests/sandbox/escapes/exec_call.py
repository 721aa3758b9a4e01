# ruff: noqa
# exec() runs unrestricted code.
exec("import os; result = os.getcwd()")
