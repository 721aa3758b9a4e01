# ruff: noqa
# importlib.import_module loads any module.
import importlib

result = importlib.import_module("os").getcwd()
