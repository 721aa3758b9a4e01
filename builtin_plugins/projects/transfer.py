"""Export and import: a lossless JSON document of a whole project, and a CSV of its tasks.

Imports are all or nothing: the whole input is validated first (every problem reported, by row for
CSV), then written in one transaction that publishes one ``*.created`` event per object.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from builtin_plugins.projects import events
from builtin_plugins.projects.graph import CycleError, topological_order
from builtin_plugins.projects.history import Snapshot
from builtin_plugins.projects.lean import Lender
from builtin_plugins.projects.models import FINISHED, new_id, utcnow
from builtin_plugins.projects.queries import DEPENDENCIES, TABLES, document_column, render
from builtin_plugins.projects.schemas import (
    ComponentCreate,
    ComponentOut,
    ProjectCreate,
    ProjectOut,
    TaskCreate,
    TaskOut,
    Timestamp,
    UtcTimestamp,
    rfc3339,
)
from builtin_plugins.projects.service import as_row, mean
from kernel.routing import MAX_FIELD_ERRORS
from sdk import BadRequest, Conflict, NotFound, ValidationFailed

FORMAT = "taylordash.project/1"
CSV_COLUMNS = (
    "id",
    "component_id",
    "component",
    "title",
    "description",
    "status",
    "progress",
    "assignee",
    "labels",
    "estimate_minutes",
    "due_date",
    "completed_at",
    "created_at",
    "updated_at",
)
CSV_INPUT = {"title", "description", "status", "progress", "assignee", "labels", "estimate_minutes", "due_date"}


class _Stamped(BaseModel):
    id: uuid.UUID
    completed_at: UtcTimestamp | None = None
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    version: int = Field(1, ge=1, le=2**31 - 1)  # the column is a 32-bit integer


class ProjectRecord(ProjectCreate, _Stamped):
    progress: int = 0
    component_count: int = 0


class ComponentRecord(ComponentCreate, _Stamped):
    project_id: uuid.UUID
    depends_on: list[uuid.UUID] = []
    progress: int = 0
    task_count: int = 0
    task_estimate_minutes: int = 0


class TaskRecord(TaskCreate, _Stamped):
    project_id: uuid.UUID
    component_id: uuid.UUID
    progress: int = Field(0, ge=0, le=100)


class ProjectDocument(BaseModel):
    """A whole project, lossless: ``GET /projects/{id}/export`` writes it, ``POST /projects/import``
    reads it back (derived fields are recomputed on import and come out equal)."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(FORMAT, pattern=f"^{FORMAT}$")
    exported_at: Timestamp | None = None
    project: ProjectRecord
    components: list[ComponentRecord] = []
    tasks: list[TaskRecord] = []


class ProjectDocumentOut(BaseModel):
    """The export document as written (for the OpenAPI description)."""

    format: str
    exported_at: Timestamp
    project: ProjectOut
    components: list[ComponentOut]
    tasks: list[TaskOut]


# -- export -------------------------------------------------------------------------------------------
def export_document(snapshot: Snapshot) -> dict[str, Any]:
    by_created = sorted(snapshot.components.values(), key=lambda c: (c["created_at"], c["id"]))
    tasks = sorted(snapshot.tasks.values(), key=lambda t: (t["created_at"], t["id"]))
    return {
        "format": FORMAT,
        "exported_at": rfc3339(utcnow()),
        "project": snapshot.project,
        "components": by_created,
        "tasks": tasks,
    }


def tasks_csv(snapshot: Snapshot) -> str:
    names = {cid: c["name"] for cid, c in snapshot.components.items()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for task in sorted(snapshot.tasks.values(), key=lambda t: (t["created_at"], t["id"])):
        row = {**task, "component": names.get(task["component_id"], ""), "labels": ";".join(task["labels"])}
        writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


async def load_snapshot(lender: Lender, project_id: uuid.UUID) -> Snapshot:
    """The current state of a project as documents (what an export writes)."""
    dialect = lender.dialect.name
    snapshot = Snapshot()
    async with lender.lease() as lent, lender.consistent(lent):
        for resource, column in (("projects", "id"), ("components", "project_id"), ("tasks", "project_id")):
            table = TABLES[resource]
            statement = lender.statement(
                ("export", resource),
                lambda table=table, resource=resource, column=column: (
                    sa.select(document_column(dialect, resource))
                    .select_from(table)
                    .where(table.c[column] == sa.bindparam("id", type_=sa.Uuid))
                ),
            )
            rows = await lender.fetch(lent, statement, {"id": project_id})
            docs = [json.loads(r[0]) for r in rows]
            if resource == "projects":
                snapshot.project = docs[0] if docs else None
            else:
                target = snapshot.components if resource == "components" else snapshot.tasks
                target.update((d["id"], d) for d in docs)
    if snapshot.project is None:
        raise NotFound(f"no project with id {project_id}")
    return snapshot


# -- import ---------------------------------------------------------------------------------------------
def check_document(doc: ProjectDocument, copy: bool) -> ProjectDocument:
    """Referential checks the models cannot make; ids are replaced by fresh ones when ``copy``."""
    errors: list[dict[str, Any]] = []
    component_ids = {c.id for c in doc.components}
    if len(component_ids) != len(doc.components):
        errors.append({"loc": ["components"], "msg": "component ids repeat", "type": "value_error"})
    if len({t.id for t in doc.tasks}) != len(doc.tasks):
        errors.append({"loc": ["tasks"], "msg": "task ids repeat", "type": "value_error"})
    for i, c in enumerate(doc.components):
        if c.project_id != doc.project.id:
            errors.append(
                {"loc": ["components", i, "project_id"], "msg": "not the project's id", "type": "value_error"}
            )
        for d in c.depends_on:
            if d not in component_ids or d == c.id:
                errors.append(
                    {
                        "loc": ["components", i, "depends_on"],
                        "msg": f"bad dependency {d}",
                        "type": "value_error",
                    }
                )
    for i, t in enumerate(doc.tasks):
        if t.component_id not in component_ids:
            errors.append({"loc": ["tasks", i, "component_id"], "msg": "unknown component", "type": "value_error"})
        if t.project_id != doc.project.id:
            errors.append({"loc": ["tasks", i, "project_id"], "msg": "not the project's id", "type": "value_error"})
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    if errors:
        raise ValidationFailed("the document is inconsistent", errors=errors)
    try:
        topological_order([c.id for c in doc.components], {c.id: c.depends_on for c in doc.components})
    except CycleError as exc:
        raise Conflict(
            "the dependencies form a cycle", slug="dependency-cycle", cycle=[str(c) for c in exc.cycle]
        ) from None
    if copy:
        fresh = {old: new_id() for old in [doc.project.id, *component_ids]}
        doc.project.id = fresh[doc.project.id]
        for c in doc.components:
            c.id, c.project_id = fresh[c.id], doc.project.id
            c.depends_on = [fresh[d] for d in c.depends_on]
        for t in doc.tasks:
            t.id, t.project_id, t.component_id = new_id(), doc.project.id, fresh[t.component_id]
    return doc


def parse_csv(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    """``(component names in order of appearance, task rows)`` of a tasks CSV, or 422 listing every bad
    row (``rows``: line, column, message)."""
    try:
        return _parse_csv(csv.DictReader(io.StringIO(text, newline="")))  # csv reads \r, \n and \r\n itself
    except csv.Error as exc:
        raise BadRequest(f"the body is not readable CSV: {exc}", slug="malformed-csv") from None


def _parse_csv(reader: csv.DictReader[str]) -> tuple[list[str], list[dict[str, Any]]]:
    header = reader.fieldnames or []
    missing = [c for c in ("component", "title") if c not in header]
    if missing:
        raise _csv_problem([{"row": 1, "column": c, "msg": "missing column"} for c in missing])
    errors: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    components: dict[str, None] = {}
    for line, raw in enumerate(reader, start=2):
        values = {k: v for k, v in raw.items() if k in CSV_INPUT and v not in (None, "")}
        if "labels" in values:
            values["labels"] = [label for label in values["labels"].split(";") if label.strip()]
        component = (raw.get("component") or "").strip()
        if not component or len(component) > 200:
            errors.append({"row": line, "column": "component", "msg": "must be 1 to 200 characters"})
        try:
            task = TaskCreate.model_validate(values)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False):
                errors.append({"row": line, "column": str(err["loc"][0]) if err["loc"] else "", "msg": err["msg"]})
            continue
        if len(errors) >= MAX_FIELD_ERRORS:
            break
        if component:
            components.setdefault(component, None)
            tasks.append({"component": component, **as_row(task.model_dump())})
    if errors:
        raise _csv_problem(errors)
    return list(components), tasks


def _csv_problem(errors: list[dict[str, Any]]) -> ValidationFailed:
    return ValidationFailed(
        f"{len(errors)} problem(s) in the CSV; nothing was imported", rows=errors[:MAX_FIELD_ERRORS]
    )


Tree = tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], list[tuple[uuid.UUID, uuid.UUID]]]


def tree_from_document(doc: ProjectDocument) -> Tree:
    project = as_row(doc.project.model_dump(exclude={"progress", "component_count"}))
    derived = {"progress", "task_count", "task_estimate_minutes", "depends_on"}
    components = [as_row(c.model_dump(exclude=derived)) for c in doc.components]
    tasks = [as_row(t.model_dump()) for t in doc.tasks]
    edges = [(c.id, d) for c in doc.components for d in c.depends_on]
    return project, components, tasks, edges


def _new(now: datetime, model: BaseModel, **fields: Any) -> dict[str, Any]:
    values = as_row(model.model_dump())
    finished = now if values.get("status") in FINISHED else None
    return {
        **values,
        "id": new_id(),
        "created_at": now,
        "updated_at": now,
        "completed_at": finished,
        "version": 1,
        **fields,
    }


def tree_from_csv(name: str, text: str) -> Tree:
    """A new project called ``name`` holding the CSV's tasks, components made from its names."""
    component_names, task_rows = parse_csv(text)
    now = utcnow()
    project = _new(now, ProjectCreate(name=name))
    components = [_new(now, ComponentCreate(name=n), project_id=project["id"]) for n in component_names]
    by_name = {c["name"]: c["id"] for c in components}
    tasks = []
    for row in task_rows:
        component_id = by_name[row.pop("component")]
        if row["progress"] is None:
            row["progress"] = 100 if row["status"] == "done" else 0
        finished = now if row["status"] in FINISHED else None
        tasks.append(
            {
                **row,
                "id": new_id(),
                "project_id": project["id"],
                "component_id": component_id,
                "created_at": now,
                "updated_at": now,
                "completed_at": finished,
                "version": 1,
            }
        )
    return project, components, tasks, []


async def write_tree(
    kernel: Any,
    lender: Lender,
    actor: Any,
    project: dict[str, Any],
    components: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    edges: Iterable[tuple[uuid.UUID, uuid.UUID]],
) -> dict[str, Any]:
    """Insert a whole project in one transaction with one event per object; the project document."""
    counters: dict[uuid.UUID, list[int]] = {c["id"]: [0, 0, 0] for c in components}
    for t in tasks:
        c = counters[t["component_id"]]
        c[0] += 1
        c[1] += t["progress"]
        c[2] += t["estimate_minutes"] or 0
    for comp in components:
        count, total, estimate = counters[comp["id"]]
        comp.update(
            task_count=count, task_progress_sum=total, task_estimate_minutes=estimate, progress=mean(total, count)
        )
    progress_sum = sum(c["progress"] for c in components)
    project.update(
        component_count=len(components),
        component_progress_sum=progress_sum,
        progress=mean(progress_sum, len(components)),
    )
    depends: dict[uuid.UUID, list[uuid.UUID]] = {c["id"]: [] for c in components}
    edge_rows = []
    now = utcnow()
    for src, dst in edges:
        depends[src].append(dst)
        edge_rows.append({"component_id": src, "depends_on_id": dst, "project_id": project["id"], "created_at": now})
    async with lender.transaction() as session:
        exists = await session.execute(
            sa.select(TABLES["projects"].c.id).where(TABLES["projects"].c.id == project["id"])
        )
        if exists.first() is not None:
            raise Conflict(f"a project with id {project['id']} exists; import with mode=copy for a copy")
        await session.execute(sa.insert(TABLES["projects"]), [project])
        if components:
            await session.execute(sa.insert(TABLES["components"]), components)
        for chunk in _chunks(tasks, 5000):
            await session.execute(sa.insert(TABLES["tasks"]), chunk)
        if edge_rows:
            await session.execute(sa.insert(DEPENDENCIES), edge_rows)
        pid = project["id"]
        after = render("projects", project)
        await events.publish(kernel, session, "projects.created", pid, actor, pid, after=after)
        for comp in components:
            doc = render("components", {**comp, "depends_on": []})
            await events.publish(kernel, session, "components.created", comp["id"], actor, pid, after=doc)
        for t in tasks:
            await events.publish(kernel, session, "tasks.created", t["id"], actor, pid, after=render("tasks", t))
        for e in edge_rows:
            doc = {k: str(v) if not isinstance(v, datetime) else rfc3339(v) for k, v in e.items()}
            await events.publish(
                kernel, session, "components.dependency_added", e["component_id"], actor, pid, after=doc
            )
    return after


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
