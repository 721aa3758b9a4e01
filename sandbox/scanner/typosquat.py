"""Names one typo away from a popular PyPI distribution (the shipped list in ``top_pypi.py``)."""

from __future__ import annotations

import re
from functools import lru_cache

from sandbox.scanner.top_pypi import TOP_PYPI_NAMES

_SEPARATORS = re.compile(r"[-_.]+")


def normalise(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return _SEPARATORS.sub("-", name).lower()


@lru_cache(maxsize=1)
def popular_names() -> frozenset[str]:
    return frozenset(normalise(name) for name in TOP_PYPI_NAMES)


def distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of neighbours counts 1), stopping past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i, *([0] * len(b))]
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _limit(name: str) -> int:
    return 0 if len(name) < 5 else 1 if len(name) < 10 else 2


def lookalike(name: str) -> str | None:
    """The popular name ``name`` imitates, or ``None`` (a popular name itself imitates nothing)."""
    wanted = normalise(name)
    popular = popular_names()
    if wanted in popular:
        return None
    limit = _limit(wanted)
    if limit == 0:
        return None
    squashed = wanted.replace("-", "")
    for candidate in sorted(popular):
        if squashed == candidate.replace("-", "") or distance(wanted, candidate, limit) <= limit:
            return candidate
    return None


def shadows(name: str) -> bool:
    """Whether ``name`` is exactly a popular distribution's name."""
    return normalise(name) in popular_names()
