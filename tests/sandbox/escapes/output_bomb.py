# ruff: noqa
# Printing without end.
while True:
    print("x" * 10000)
