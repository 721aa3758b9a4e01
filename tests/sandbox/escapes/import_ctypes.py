# ruff: noqa
# ctypes calls into libc directly.
import ctypes

result = ctypes.CDLL(None).getpid()
