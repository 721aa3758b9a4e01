# ruff: noqa
# type() and vars() open the class machinery.
result = vars(type(1))
