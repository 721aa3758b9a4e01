"""SQL for the read paths: the database renders each row as its JSON document.

Each resource is described once (``FIELDS``): the same description builds the SQL that renders a row
on PostgreSQL (``json_build_object``) or SQLite (``json_object``), and the Python renderer used for
the documents that writes return and publish, so both paths produce the same JSON.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from builtin_plugins.projects.lean import sqlite_value
from builtin_plugins.projects.models import Component, ComponentDependency, Project, Task
from builtin_plugins.projects.schemas import rfc3339
from sdk import decode_cursor, keyset_after
from sdk import encode_cursor as _encode

TABLES = {"projects": Project.__table__, "components": Component.__table__, "tasks": Task.__table__}
DEPENDENCIES = ComponentDependency.__table__
_COMMON = ("labels", "json"), ("metadata", "json")
FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "projects": (
        ("id", "uuid"),
        ("name", "str"),
        ("description", "str"),
        ("status", "str"),
        ("progress", "int"),
        ("owner", "str"),
        *_COMMON,
        ("start_date", "date"),
        ("due_date", "date"),
        ("completed_at", "ts"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("version", "int"),
        ("component_count", "int"),
    ),
    "components": (
        ("id", "uuid"),
        ("project_id", "uuid"),
        ("name", "str"),
        ("description", "str"),
        ("status", "str"),
        ("progress", "int"),
        ("owner", "str"),
        *_COMMON,
        ("position", "json"),
        ("estimate_minutes", "int"),
        ("task_estimate_minutes", "int"),
        ("due_date", "date"),
        ("completed_at", "ts"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("version", "int"),
        ("task_count", "int"),
        ("depends_on", "deps"),
    ),
    "tasks": (
        ("id", "uuid"),
        ("project_id", "uuid"),
        ("component_id", "uuid"),
        ("title", "str"),
        ("description", "str"),
        ("status", "str"),
        ("progress", "int"),
        ("assignee", "str"),
        *_COMMON,
        ("estimate_minutes", "int"),
        ("due_date", "date"),
        ("completed_at", "ts"),
        ("created_at", "ts"),
        ("updated_at", "ts"),
        ("version", "int"),
    ),
}
SEARCHED = {
    "projects": ("name", "description"),
    "components": ("name", "description"),
    "tasks": ("title", "description"),
}
SORT_KINDS = {
    "created_at": "ts",
    "updated_at": "ts",
    "name": "str",
    "title": "str",
    "progress": "int",
    "due_date": "date",
}
FAR_FUTURE = "9999-01-01"  # not date.max: asyncpg maps that to infinity
_WORD = re.compile(r"\w+")


# -- rendering in SQL -------------------------------------------------------------------------------
def sqlite_uuid(expr: str) -> str:
    return (
        f"substr({expr},1,8)||'-'||substr({expr},9,4)||'-'||substr({expr},13,4)||'-'"
        f"||substr({expr},17,4)||'-'||substr({expr},21)"
    )


def _sql_value(dialect: str, table: str, name: str, kind: str) -> str:
    column = f"{table}.{name if name != 'metadata' else 'metadata'}"
    pg = dialect == "postgresql"
    if kind == "ts":
        if pg:
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return f"replace({column}, ' ', 'T') || 'Z'"
    if kind == "uuid" and not pg:
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {sqlite_uuid(column)} END"
    if kind == "json" and not pg:
        return f"json({column})"
    if kind == "deps":
        if pg:
            return (
                "(SELECT coalesce(json_agg(d.depends_on_id ORDER BY d.depends_on_id), '[]'::json) "  # noqa: S608 - identifiers are module constants; values are bound
                f"FROM component_dependencies d WHERE d.component_id = {table}.id)"
            )
        return (
            f"json((SELECT json_group_array({sqlite_uuid('d.depends_on_id')}) FROM (SELECT depends_on_id "  # noqa: S608 - identifiers are module constants; values are bound
            f"FROM component_dependencies WHERE component_id = {table}.id ORDER BY depends_on_id) d))"
        )
    return column


def document_sql(dialect: str, resource: str) -> str:
    """SQL rendering one row of ``resource`` as its JSON document."""
    pairs = ", ".join(f"'{name}', {_sql_value(dialect, resource, name, kind)}" for name, kind in FIELDS[resource])
    if dialect == "postgresql":
        # As text: the driver connection decodes json values into Python objects, text it leaves alone.
        return f"json_build_object({pairs})::text"
    return f"json_object({pairs})"


def document_column(dialect: str, resource: str) -> Any:
    return sa.literal_column(document_sql(dialect, resource)).label("doc")


# -- rendering in Python ----------------------------------------------------------------------------
def _py_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "uuid":
        return str(value)
    if kind == "ts":
        return rfc3339(value)
    if kind == "date":
        return value.isoformat()
    if kind == "deps":
        return [str(v) for v in sorted(value, key=str)]
    return value


def render(resource: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a row given as ``{column: python value}`` (``metadata`` by its API name)."""
    return {name: _py_value(kind, values.get(name)) for name, kind in FIELDS[resource]}


def parse_timestamp(value: str) -> datetime:
    """An RFC 3339 timestamp, or the naive UTC text SQLAlchemy stores on SQLite, as aware UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_document(resource: str, doc: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`render`: a document back to Python column values."""
    out: dict[str, Any] = {}
    for name, kind in FIELDS[resource]:
        value = doc.get(name)
        if value is None:
            out[name] = None
        elif kind == "uuid":
            out[name] = uuid.UUID(value)
        elif kind == "ts":
            out[name] = parse_timestamp(value)
        elif kind == "date":
            out[name] = date.fromisoformat(value)
        elif kind == "deps":
            out[name] = [uuid.UUID(v) for v in value]
        else:
            out[name] = value
    return out


# -- lists ------------------------------------------------------------------------------------------
def search_terms(dialect: str, q: str) -> str | None:
    """``q`` as a prefix query for the backend's full-text engine; ``None`` when it has no words."""
    words = _WORD.findall(q.lower())
    if not words:
        return None
    if dialect == "postgresql":
        return " & ".join(f"{w}:*" for w in words)
    return " ".join(f'"{w}"*' for w in words)


def _sort_expression(dialect: str, table: sa.Table, key: str) -> Any:
    column = table.c[key]
    if key == "due_date":
        far = f"DATE '{FAR_FUTURE}'" if dialect == "postgresql" else f"'{FAR_FUTURE}'"
        return sa.func.coalesce(column, sa.literal_column(far), type_=sa.Date)
    return column


def list_statement(dialect: str, resource: str, shape: tuple[Any, ...]) -> sa.Select:
    """The list query of ``resource`` for ``shape`` (see :func:`list_shape`); parameters are named."""
    scope, statuses, person, label, due_from, due_to, q, sort, after = shape
    table = TABLES[resource]
    pg = dialect == "postgresql"
    conditions: list[Any] = []
    if scope:
        conditions.append(table.c[scope] == sa.bindparam("scope", type_=sa.Uuid))
    if statuses:
        conditions.append(table.c.status.in_([sa.bindparam(f"status{i}") for i in range(statuses)]))
    if person:
        conditions.append(table.c[person] == sa.bindparam("person"))
    if label:
        if pg:
            conditions.append(sa.text(f"{resource}.labels @> CAST(:label AS jsonb)"))
        else:
            conditions.append(
                sa.text(f"EXISTS (SELECT 1 FROM json_each({resource}.labels) AS l WHERE l.value = :label)")  # noqa: S608 - identifiers are module constants; values are bound
            )
    if due_from:
        conditions.append(table.c.due_date >= sa.bindparam("due_from", type_=sa.Date))
    if due_to:
        conditions.append(table.c.due_date <= sa.bindparam("due_to", type_=sa.Date))
    if q:
        if pg:
            document = " || ' ' || ".join(f"{resource}.{c}" for c in SEARCHED[resource])
            conditions.append(sa.text(f"to_tsvector('simple', {document}) @@ to_tsquery('simple', :q)"))
        else:
            conditions.append(
                sa.text(f"{resource}.rowid IN (SELECT rowid FROM {resource}_fts WHERE {resource}_fts MATCH :q)")  # noqa: S608 - identifiers are module constants; values are bound
            )
    descending = sort.startswith("-")
    key = _sort_expression(dialect, table, sort.lstrip("-"))
    if after:
        after_key = [sa.bindparam("k0", type_=key.type), sa.bindparam("k1", type_=sa.Uuid)]
        conditions.append(keyset_after([key, table.c.id], after_key, descending))
    order = [key.desc(), table.c.id.desc()] if descending else [key.asc(), table.c.id.asc()]
    return (
        sa.select(document_column(dialect, resource), key.label("k0"), table.c.id.label("k1"))
        .select_from(table)
        .where(*conditions)
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def list_shape(scope: str | None, query: Any, person_field: str | None) -> tuple[Any, ...]:
    person = person_field if person_field and getattr(query, person_field, None) else None
    return (
        scope,
        len(query.status or ()),
        person,
        bool(query.label),
        bool(query.due_from),
        bool(query.due_to),
        bool(query.q),
        query.sort,
        bool(query.cursor),
    )


def list_params(dialect: str, query: Any, person_field: str | None, scope_id: uuid.UUID | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": query.limit + 1, "scope": scope_id}
    for i, status in enumerate(query.status or ()):
        params[f"status{i}"] = str(status)
    if person_field:
        params["person"] = getattr(query, person_field, None)
    if query.label:
        params["label"] = json.dumps([query.label]) if dialect == "postgresql" else query.label
    params["due_from"], params["due_to"] = query.due_from, query.due_to
    if query.q:
        params["q"] = search_terms(dialect, query.q) or ""
    if query.cursor:
        raw_key, raw_id = decode_cursor(query.cursor, 2)
        params["k0"], params["k1"] = _key_from_cursor(dialect, SORT_KINDS[query.sort.lstrip("-")], raw_key, raw_id)
    return params


def _key_from_cursor(dialect: str, kind: str, key: Any, ident: Any) -> tuple[Any, Any]:
    from kernel.pagination import invalid_cursor

    try:
        row_id = uuid.UUID(str(ident))
        if kind == "int":
            if not isinstance(key, int):
                raise ValueError
            return key, row_id
        if not isinstance(key, str):
            raise ValueError
        if kind in ("ts", "date"):
            value = parse_timestamp(key) if kind == "ts" else date.fromisoformat(key)
            return (value if dialect == "postgresql" else sqlite_value(value)), row_id
        return key, row_id
    except ValueError:
        raise invalid_cursor() from None


def next_cursor(dialect: str, kind: str, key: Any, ident: Any) -> str:
    """The cursor after a row whose sort key is ``key`` (as the driver returned it)."""
    if kind == "ts":
        key = rfc3339(key) if isinstance(key, datetime) else key.replace(" ", "T") + "Z"
    elif kind == "date":
        key = key.isoformat() if isinstance(key, date) else str(key)
    row_id = str(ident) if isinstance(ident, uuid.UUID) or dialect == "postgresql" else str(uuid.UUID(hex=ident))
    return _encode([key, row_id])


def page_json(docs: list[str], cursor: str | None) -> bytes:
    """``{"items": [...], "next_cursor": ...}`` from documents the database rendered."""
    tail = "null" if cursor is None else json.dumps(cursor)
    return ('{"items":[' + ",".join(docs) + '],"next_cursor":' + tail + "}").encode()
