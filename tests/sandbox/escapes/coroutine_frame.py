# ruff: noqa
# A coroutine exposes cr_frame, the way out of a restricted function.
async def coro():
    return 1


c = coro()
result = c.cr_frame.f_globals
