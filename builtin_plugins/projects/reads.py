"""Hot reads on the lean path: statements compiled once per shape, run on a lent driver connection,
the JSON documents rendered by the database and joined into the response without parsing."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json

from builtin_plugins.projects import graph as algo
from builtin_plugins.projects.lean import Lender
from builtin_plugins.projects.queries import (
    DEPENDENCIES,
    SORT_KINDS,
    TABLES,
    document_column,
    list_params,
    list_shape,
    list_statement,
    next_cursor,
    page_json,
    sqlite_uuid,
)
from sdk import NotFound, split_page

PERSON = {"projects": "owner", "components": "owner", "tasks": "assignee"}
KIND = {"projects": "project", "components": "component", "tasks": "task"}


class Reader:
    """The read side of the API, also used by other plugins through the ``projects`` service."""

    def __init__(self, lender: Lender) -> None:
        self.lender = lender
        self.dialect = lender.dialect.name

    def _by_id(self, resource: str) -> Any:
        table = TABLES[resource]
        return self.lender.statement(
            ("doc", resource),
            lambda: (
                sa.select(document_column(self.dialect, resource), table.c.version)
                .select_from(table)
                .where(table.c.id == sa.bindparam("id", type_=sa.Uuid))
            ),
        )

    async def document(self, resource: str, ident: uuid.UUID) -> tuple[str, int]:
        """The JSON document of one object and its version; 404 if there is none."""
        statement = self._by_id(resource)
        async with self.lender.lease() as lent:
            row = await self.lender.fetchrow(lent, statement, {"id": ident})
        if row is None:
            raise NotFound(f"no {KIND[resource]} with id {ident}")
        return row[0], row[1]

    async def exists(self, resource: str, ident: uuid.UUID) -> bool:
        table = TABLES[resource]
        statement = self.lender.statement(
            ("exists", resource),
            lambda: (
                sa.select(sa.literal_column("1"))
                .select_from(table)
                .where(table.c.id == sa.bindparam("id", type_=sa.Uuid))
            ),
        )
        async with self.lender.lease() as lent:
            return await self.lender.fetchrow(lent, statement, {"id": ident}) is not None

    async def page(self, resource: str, query: Any, scope: tuple[str, str, uuid.UUID] | None = None) -> bytes:
        """One page of ``resource`` as ``{"items", "next_cursor"}`` JSON bytes. ``scope`` is
        ``(column, parent resource, parent id)``: a 404 names the parent when it does not exist."""
        person = PERSON[resource]
        column, parent, parent_id = scope if scope else (None, None, None)
        shape = list_shape(column, query, person)
        statement = self.lender.statement(
            ("list", resource, shape), lambda: list_statement(self.dialect, resource, shape)
        )
        params = list_params(self.dialect, query, person, parent_id)
        if query.q and not params.get("q"):
            return page_json([], None)  # no searchable word: nothing matches
        async with self.lender.lease() as lent:
            rows = await self.lender.fetch(lent, statement, params)
        items, more = split_page(rows, query.limit)
        if not items and parent is not None and not await self.exists(parent, parent_id):
            raise NotFound(f"no {KIND[parent]} with id {parent_id}")
        cursor = None
        if more:
            last = items[-1]
            cursor = next_cursor(self.dialect, SORT_KINDS[query.sort.lstrip("-")], last[1], last[2])
        return page_json([row[0] for row in items], cursor)

    def _id_text(self, column: Any) -> Any:
        """A UUID column as its canonical text, rendered by the database (cheaper than in Python)."""
        if self.dialect == "postgresql":
            return sa.cast(column, sa.Text)
        return sa.literal_column(sqlite_uuid(f"{column.table.name}.{column.name}"))

    async def graph(self, project_id: uuid.UUID) -> bytes:
        """The dependency graph of a project as JSON bytes (see ``schemas.Graph``)."""
        components, edges = TABLES["components"], DEPENDENCIES
        nodes_sql = self.lender.statement(
            ("graph-nodes",),
            lambda: (
                sa.select(
                    self._id_text(components.c.id),
                    components.c.name,
                    components.c.status,
                    components.c.progress,
                    sa.func.coalesce(components.c.estimate_minutes, components.c.task_estimate_minutes),
                )
                .where(components.c.project_id == sa.bindparam("project_id", type_=sa.Uuid))
                .order_by(components.c.created_at, components.c.id)
            ),
        )
        edges_sql = self.lender.statement(
            ("graph-edges",),
            lambda: (
                sa.select(self._id_text(edges.c.component_id), self._id_text(edges.c.depends_on_id))
                .where(edges.c.project_id == sa.bindparam("project_id", type_=sa.Uuid))
                .order_by(edges.c.component_id, edges.c.depends_on_id)
            ),
        )
        async with self.lender.lease() as lent:
            node_rows = await self.lender.fetch(lent, nodes_sql, {"project_id": project_id})
            edge_rows = await self.lender.fetch(lent, edges_sql, {"project_id": project_id})
        if not node_rows and not await self.exists("projects", project_id):
            raise NotFound(f"no project with id {project_id}")
        return to_json(build_graph(node_rows, edge_rows))


def build_graph(node_rows: list[Any], edge_rows: list[Any]) -> dict[str, Any]:
    """``nodes`` as ``(id, name, status, progress, weight)`` rows and ``edges`` as ``(component,
    depends_on)`` rows, ids as text, into the graph document."""
    ids = [r[0] for r in node_rows]
    weight = {i: r[4] or 0 for i, r in zip(ids, node_rows, strict=True)}
    deps: dict[str, list[str]] = {i: [] for i in ids}
    edge_docs = []
    for s, d in edge_rows:
        deps[s].append(d)
        edge_docs.append({"source": s, "target": d})
    order = algo.topological_order(ids, deps)
    grouped = algo.levels(order, deps)
    level = {n: depth for depth, group in enumerate(grouped) for n in group}
    critical = algo.critical_path(order, deps, weight.__getitem__)
    nodes = [
        {"id": i, "name": r[1], "status": r[2], "progress": r[3], "weight_minutes": weight[i], "level": level[i]}
        for i, r in zip(ids, node_rows, strict=True)
    ]
    return {
        "nodes": nodes,
        "edges": edge_docs,
        "topological_order": order,
        "levels": grouped,
        "critical_path": {"components": critical.nodes, "total_minutes": critical.total},
    }
