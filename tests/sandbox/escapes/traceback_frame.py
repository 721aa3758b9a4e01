# ruff: noqa
# An exception's traceback leads to the frames of the worker.
try:
    1 / 0
except Exception as exc:
    result = exc.__traceback__.tb_frame.f_back.f_globals
