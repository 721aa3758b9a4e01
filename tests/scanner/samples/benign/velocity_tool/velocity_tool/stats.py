# ruff: noqa
"""Plain statistics helpers."""

import statistics


def summary(values):
    if not values:
        return {"mean": 0.0, "stdev": 0.0, "weeks": 0}
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "stdev": spread, "weeks": len(values)}
