# ruff: noqa
"""Ordinary Python within RestrictedPython's rules: every line must run in the sandbox untouched."""


class Counter:
    def __init__(self, start):
        self.count = start

    def bump(self):
        self.count = self.count + 1
        return self


c = Counter(1).bump()
d = {"a": 1}
d["a"] = d["a"] + 1
items = [1, 2]
items[0] = items[0] + 5
total = 0
for x in range(4):
    total += x
import re, datetime, collections, itertools, functools, json, math, statistics, string, time

m = re.search(r"(\d+)-(\d+)", "ticket 12-34")
result = {
    "count": c.count,
    "d": d,
    "items": items,
    "total": total,
    "re": m.groups(),
    "findall": re.findall("[a-c]", "abcabc"),
    "date": datetime.date(2026, 1, 2).isoformat(),
    "now": datetime.datetime.now(datetime.timezone.utc).year > 2000,
    "counter": collections.Counter("aab").most_common(1),
    "chain": list(itertools.chain([1], [2])),
    "reduce": functools.reduce(lambda a, b: a + b, [1, 2, 3]),
    "f": f"{c.count:03d}",
    "gen": sum(x * x for x in range(3)),
    "sorted": sorted([3, 1], key=lambda v: -v),
    "mean": statistics.mean([1, 2, 3]),
    "cap": string.capwords("hi there"),
    "sqrt": math.sqrt(9),
    "unpack": [a + b for a, b in [(1, 2), (3, 4)]],
    "isinst": isinstance(c, Counter),
}
print("ok")
