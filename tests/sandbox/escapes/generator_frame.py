# ruff: noqa
# A generator object exposes its frame, and the frame its globals.
def gen():
    yield 1


g = gen()
result = g.gi_frame.f_globals
