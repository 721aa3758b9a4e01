"""Pure algorithms on the component dependency graph (no I/O).

``deps[n]`` is the set of nodes ``n`` depends on; an edge ``n → d`` means "d must be done before n".
Every function is deterministic: ties are broken by the order of ``nodes``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

N = TypeVar("N", bound=Hashable)
Deps = Mapping[N, Iterable[N]]


class CycleError(ValueError):
    """The graph has a cycle; ``cycle`` lists it, first node repeated at the end."""

    def __init__(self, cycle: list[object]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(map(str, cycle)))


def path_between(deps: Deps[N], start: N, goal: N) -> list[N] | None:
    """A dependency path ``start → … → goal`` (following ``deps``), or ``None``."""
    if start == goal:
        return [start]
    parent: dict[N, N] = {}
    stack = [start]
    seen = {start}
    while stack:
        node = stack.pop()
        for nxt in deps.get(node, ()):
            if nxt in seen:
                continue
            parent[nxt] = node
            if nxt == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            seen.add(nxt)
            stack.append(nxt)
    return None


def cycle_if_added(deps: Deps[N], component: N, depends_on: N) -> list[N] | None:
    """The cycle the edge ``component → depends_on`` would close, as
    ``[component, depends_on, …, component]``, or ``None`` when the edge is safe."""
    back = path_between(deps, depends_on, component)
    return None if back is None else [component, *back]


def topological_order(nodes: Sequence[N], deps: Deps[N]) -> list[N]:
    """Every node after all the nodes it depends on (Kahn's algorithm). Raises :class:`CycleError`."""
    index = {n: i for i, n in enumerate(nodes)}
    waiting = {n: 0 for n in nodes}
    dependents: dict[N, list[N]] = {n: [] for n in nodes}
    for n in nodes:
        for d in set(deps.get(n, ())):
            waiting[n] += 1
            dependents[d].append(n)
    ready = [n for n in nodes if waiting[n] == 0]
    order: list[N] = []
    while ready:
        # Process in rounds so the order is stable: a round is sorted by the nodes' input order.
        order.extend(ready)
        released: list[N] = []
        for n in ready:
            for m in dependents[n]:
                waiting[m] -= 1
                if waiting[m] == 0:
                    released.append(m)
        ready = sorted(released, key=index.__getitem__)
    if len(order) != len(nodes):
        left = {n for n in nodes if waiting[n] > 0}
        raise CycleError(list(_some_cycle(left, deps)))
    return order


def _some_cycle(left: set[N], deps: Deps[N]) -> list[N]:
    node = next(iter(left))
    trail: dict[N, int] = {}
    path: list[N] = []
    while node not in trail:
        trail[node] = len(path)
        path.append(node)
        node = next(d for d in deps.get(node, ()) if d in left)
    return [*path[trail[node] :], node]


def levels(order: Sequence[N], deps: Deps[N]) -> list[list[N]]:
    """Nodes grouped by depth: level 0 depends on nothing, level k on levels < k (at least one k-1).
    ``order`` must be a topological order."""
    depth: dict[N, int] = {}
    grouped: list[list[N]] = []
    for n in order:
        d = max((depth[x] + 1 for x in deps.get(n, ())), default=0)
        depth[n] = d
        if d == len(grouped):
            grouped.append([])
        grouped[d].append(n)
    return grouped


@dataclass(frozen=True, slots=True)
class Path:
    nodes: list[object]
    total: int


def critical_path(order: Sequence[N], deps: Deps[N], weight: Callable[[N], int]) -> Path:
    """The heaviest dependency chain (sum of node weights), listed dependency first.
    ``order`` must be a topological order. An empty graph has an empty path."""
    best: dict[N, int] = {}
    via: dict[N, N | None] = {}
    for n in order:
        prev = None
        top = 0
        for d in deps.get(n, ()):
            if prev is None or best[d] > top:
                prev, top = d, best[d]
        best[n] = top + weight(n)
        via[n] = prev
    if not best:
        return Path([], 0)
    end = max(order, key=lambda n: best[n])  # first of the heaviest, in topological order
    chain: list[object] = []
    node: N | None = end
    while node is not None:
        chain.append(node)
        node = via[node]
    return Path(chain[::-1], best[end])
