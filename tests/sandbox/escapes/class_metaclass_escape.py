# ruff: noqa
# Class machinery: reach object through a class's mro.
class Probe:
    pass


result = Probe.mro()
