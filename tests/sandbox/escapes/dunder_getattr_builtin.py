# ruff: noqa
# getattr() with a dunder name built at run time, to dodge the compile-time check.
name = "_" + "_class_" + "_"
result = getattr((), name)
