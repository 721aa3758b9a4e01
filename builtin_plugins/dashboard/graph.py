"""Layered drawing of a project's dependency graph, from ``GET /api/v1/projects/{id}/graph``.

The API already computes each component's level (level n depends only on levels < n) and the critical
path. Levels become columns, left to right; within a column nodes are ordered by the mean row of the
components they depend on (one barycentre pass), which removes most crossings of small graphs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H = 168, 54
COL_GAP, ROW_GAP, MARGIN = 72, 22, 16


@dataclass(frozen=True, slots=True)
class DrawnNode:
    id: str
    name: str
    status: str
    progress: int
    weight_minutes: int
    x: int
    y: int
    critical: bool


@dataclass(frozen=True, slots=True)
class DrawnEdge:
    source: str
    target: str
    path: str
    critical: bool


@dataclass(frozen=True, slots=True)
class Drawing:
    width: int
    height: int
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]
    critical_minutes: int


def layout(graph: dict[str, Any]) -> Drawing:
    """Positions for every node and a path for every edge, in SVG user units."""
    nodes = {n["id"]: n for n in graph.get("nodes", [])}
    critical_ids: list[str] = [str(c) for c in graph.get("critical_path", {}).get("components", [])]
    critical = set(critical_ids)
    critical_pairs = set(itertools.pairwise(critical_ids))
    depends: dict[str, list[str]] = {}
    for edge in graph.get("edges", []):
        depends.setdefault(edge["source"], []).append(edge["target"])
    columns: dict[int, list[str]] = {}
    for node in nodes.values():
        columns.setdefault(int(node.get("level", 0)), []).append(node["id"])
    row: dict[str, float] = {}
    for level in sorted(columns):
        ids = sorted(columns[level], key=lambda i: nodes[i]["name"].casefold())
        if level > 0:

            def barycentre(ident: str) -> float:
                rows = [row[d] for d in depends.get(ident, []) if d in row]
                return sum(rows) / len(rows) if rows else float("inf")

            ids.sort(key=barycentre)
        columns[level] = ids
        for index, ident in enumerate(ids):
            row[ident] = index
    drawn: dict[str, DrawnNode] = {}
    for level, ids in columns.items():
        for index, ident in enumerate(ids):
            node = nodes[ident]
            drawn[ident] = DrawnNode(
                id=ident,
                name=node["name"],
                status=node["status"],
                progress=int(node.get("progress", 0)),
                weight_minutes=int(node.get("weight_minutes", 0)),
                x=MARGIN + level * (NODE_W + COL_GAP),
                y=MARGIN + index * (NODE_H + ROW_GAP),
                critical=ident in critical,
            )
    edges = []
    for edge in graph.get("edges", []):
        dependent, dependency = drawn.get(edge["source"]), drawn.get(edge["target"])
        if dependent is None or dependency is None:
            continue
        x1, y1 = dependency.x + NODE_W, dependency.y + NODE_H // 2
        x2, y2 = dependent.x, dependent.y + NODE_H // 2
        bend = max((x2 - x1) // 2, 20)
        edges.append(
            DrawnEdge(
                source=dependent.id,
                target=dependency.id,
                path=f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}",
                critical=(dependency.id, dependent.id) in critical_pairs,
            )
        )
    width = MARGIN * 2 + (max(columns, default=0) + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = MARGIN * 2 + max((len(ids) for ids in columns.values()), default=1) * (NODE_H + ROW_GAP) - ROW_GAP
    return Drawing(
        width=width,
        height=height,
        nodes=list(drawn.values()),
        edges=edges,
        critical_minutes=int(graph.get("critical_path", {}).get("total_minutes", 0)),
    )
