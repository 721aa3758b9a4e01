# ruff: noqa
# tb_frame by plain attribute name on a traceback obtained indirectly.
def boom():
    raise ValueError("x")


try:
    boom()
except ValueError as exc:
    result = getattr(getattr(exc, "with_traceback"), "tb_frame")
