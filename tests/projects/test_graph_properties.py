"""Property tests of the dependency-graph algorithms against brute-force references."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builtin_plugins.projects.graph import CycleError, critical_path, cycle_if_added, levels, topological_order

NODES = st.integers(min_value=1, max_value=9)


@st.composite
def edge_attempts(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    n = draw(NODES)
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    return n, draw(st.lists(pairs, max_size=30))


def reachable(deps: dict[int, set[int]], start: int, goal: int) -> bool:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(deps.get(node, ()))
    return False


def has_cycle(n: int, deps: dict[int, set[int]]) -> bool:
    return any(reachable(deps, d, a) for a in range(n) for d in deps.get(a, ()))


def build(n: int, attempts: list[tuple[int, int]]) -> dict[int, set[int]]:
    """Add edges one by one the way the service does: refuse self-edges and cycle-closing ones."""
    deps: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in attempts:
        if a == b:
            continue
        cycle = cycle_if_added(deps, a, b)
        closes = reachable(deps, b, a)
        assert (cycle is not None) == closes
        if cycle is None:
            deps[a].add(b)
        else:
            # The reported cycle is real: it starts with the new edge and follows existing ones back.
            assert cycle[0] == a and cycle[1] == b and cycle[-1] == a
            assert all(y in deps[x] for x, y in itertools.pairwise(cycle[1:]))
    return deps


@settings(max_examples=300, deadline=None)
@given(edge_attempts())
def test_no_cycle_is_ever_accepted(case):
    n, attempts = case
    deps = build(n, attempts)
    assert not has_cycle(n, deps)


@settings(max_examples=300, deadline=None)
@given(edge_attempts())
def test_topological_order_puts_dependencies_first(case):
    n, attempts = case
    deps = build(n, attempts)
    order = topological_order(list(range(n)), deps)
    assert sorted(order) == list(range(n))
    position = {node: i for i, node in enumerate(order)}
    assert all(position[d] < position[a] for a in deps for d in deps[a])
    grouped = levels(order, deps)
    level = {node: i for i, group in enumerate(grouped) for node in group}
    for a in range(n):
        assert level[a] == max((level[d] + 1 for d in deps[a]), default=0)


def brute_force_longest(n: int, deps: dict[int, set[int]], weight: list[int]) -> int:
    """Heaviest chain by enumerating every simple path (fine for ≤ 9 nodes in a DAG)."""
    best = 0

    def walk(node: int, total: int) -> None:
        nonlocal best
        best = max(best, total)
        for d in deps[node]:
            walk(d, total + weight[d])

    for start in range(n):
        walk(start, weight[start])
    return best


@settings(max_examples=300, deadline=None)
@given(edge_attempts(), st.data())
def test_critical_path_equals_brute_force(case, data):
    n, attempts = case
    deps = build(n, attempts)
    weight = data.draw(st.lists(st.integers(0, 50), min_size=n, max_size=n))
    order = topological_order(list(range(n)), deps)
    path = critical_path(order, deps, weight.__getitem__)
    assert path.total == brute_force_longest(n, deps, weight)
    assert path.total == sum(weight[x] for x in path.nodes)
    # The path is a chain listed dependency first: each node depends on the one before it.
    assert all(prev in deps[nxt] for prev, nxt in itertools.pairwise(path.nodes))


def test_topological_order_reports_a_cycle():
    with pytest.raises(CycleError) as caught:
        topological_order([1, 2, 3], {1: {2}, 2: {3}, 3: {1}})
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {1, 2, 3}


def test_empty_graph():
    assert topological_order([], {}) == []
    assert critical_path([], {}, lambda n: 1).nodes == []
