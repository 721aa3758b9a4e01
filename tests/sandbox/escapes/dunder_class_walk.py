# ruff: noqa
# Walk from a tuple to object.__subclasses__() to find a class with os in its globals.
result = ().__class__.__bases__[0].__subclasses__()
