# ruff: noqa
# __import__ loads any module.
os = __import__("os")
result = os.getcwd()
