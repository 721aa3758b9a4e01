# ruff: noqa
# The same frame walk, through getattr() with computed names.
def gen():
    yield 1


g = gen()
frame = getattr(g, "gi" + "_frame")
result = getattr(frame, "f" + "_back")
