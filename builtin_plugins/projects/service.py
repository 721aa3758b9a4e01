"""Domain logic of projects, components and tasks: writes, roll-ups, events. No HTTP here.

Every write runs in one transaction on a lent connection and publishes one event per changed object
through :func:`events.publish`. Rows are locked in one global order — tasks, then components, then
projects — so concurrent writers never deadlock. Roll-ups are kept by counters: a component's
progress is the rounded mean of its tasks', a project's the rounded mean of its components'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from builtin_plugins.projects import events, statements
from builtin_plugins.projects.graph import cycle_if_added
from builtin_plugins.projects.lean import Lender
from builtin_plugins.projects.models import FINISHED, new_id, utcnow
from builtin_plugins.projects.queries import DEPENDENCIES, TABLES, render
from builtin_plugins.projects.schemas import rfc3339
from sdk import Conflict, NotFound, PreconditionFailed, ValidationFailed

PROJECTS, COMPONENTS, TASKS = TABLES["projects"], TABLES["components"], TABLES["tasks"]
KIND = {"projects": "project", "components": "component", "tasks": "task"}


def mean(total: int, count: int) -> int:
    """Rounded (half up) integer mean; 0 for nothing. SQL below uses the same integer formula."""
    return (2 * total + count) // (2 * count) if count > 0 else 0


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": [field], "msg": message, "type": "value_error"}])


def check_version(resource: str, row: Mapping[str, Any], expected: int | None) -> None:
    if expected is not None and row["version"] != expected:
        raise PreconditionFailed(
            f"the {KIND[resource]} is at version {row['version']}, not {expected}; reload it and retry",
            current_version=row["version"],
        )


def apply_changes(resource: str, row: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any] | None:
    """The row after ``changes`` (``None`` if nothing changes), with version, timestamps and
    ``completed_at`` maintained."""
    changed = {k: v for k, v in changes.items() if row.get(k) != v}
    if not changed:
        return None
    new = {**row, **changed}
    if resource == "tasks" and new["status"] == "done" and "status" in changed and "progress" not in changes:
        new["progress"] = 100  # finishing a task finishes its work unless the caller says otherwise
    if "status" in changed:
        finished, was = new["status"] in FINISHED, row["status"] in FINISHED
        if finished and not was:
            new["completed_at"] = utcnow()
        elif was and not finished:
            new["completed_at"] = None
    start, due = new.get("start_date"), new.get("due_date")
    if start and due and due < start:
        raise invalid("due_date", "due_date is before start_date")
    new["version"] = row["version"] + 1
    new["updated_at"] = utcnow()
    return new


class ProjectsService:
    """Writes (and the lookups they need). Reads for the API live in :mod:`reads`."""

    def __init__(self, kernel: Any, lender: Lender) -> None:
        self.kernel = kernel
        self.lender = lender

    # -- helpers -----------------------------------------------------------------------------------
    async def _publish(self, session: AsyncSession, type_: str, row: Mapping[str, Any], actor: Any, **kw: Any) -> None:
        resource = type_.split(".")[0]
        project_id = row["id"] if resource == "projects" else row["project_id"]
        await events.publish(self.kernel, session, type_, row["id"], actor, project_id, **kw)

    @staticmethod
    async def _row(session: AsyncSession, resource: str, ident: uuid.UUID, lock: bool = True) -> dict[str, Any]:
        table = TABLES[resource]
        query = sa.select(table).where(table.c.id == ident)
        found = (await session.execute(query.with_for_update() if lock else query)).mappings().first()
        if found is None:
            raise NotFound(f"no {KIND[resource]} with id {ident}")
        return dict(found)

    @staticmethod
    async def _depends_on(session: AsyncSession, component_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list]:
        ids = list(component_ids)
        result: dict[uuid.UUID, list] = {i: [] for i in ids}
        if ids:
            rows = await session.execute(
                sa.select(DEPENDENCIES.c.component_id, DEPENDENCIES.c.depends_on_id).where(
                    DEPENDENCIES.c.component_id.in_(ids)
                )
            )
            for component_id, depends_on_id in rows:
                result[component_id].append(depends_on_id)
        return result

    async def _component_doc(self, session: AsyncSession, row: Mapping[str, Any]) -> dict[str, Any]:
        deps = await self._depends_on(session, [row["id"]])
        return render("components", {**row, "depends_on": deps[row["id"]]})

    @staticmethod
    async def _update(session: AsyncSession, resource: str, row: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        table = TABLES[resource]
        diff = {k: v for k, v in new.items() if row.get(k) != v}
        await session.execute(sa.update(table).where(table.c.id == new["id"]).values(diff))

    async def _roll_up(
        self, session: AsyncSession, deltas: Mapping[uuid.UUID, tuple[int, int, int]]
    ) -> dict[uuid.UUID, uuid.UUID]:
        """Apply ``{component_id: (Δtasks, Δprogress sum, Δestimate)}`` to the components (locked in id
        order) and the resulting progress changes to their projects; ``{component_id: project_id}``.
        On the lean path: this runs for every task written."""
        run, statement = self.lender.run, self.lender.statement
        update = statement(("roll-up-component",), statements.roll_up_component)
        project_deltas: dict[uuid.UUID, int] = {}
        projects: dict[uuid.UUID, uuid.UUID] = {}
        for component_id in sorted(deltas):
            d_count, d_sum, d_estimate = deltas[component_id]
            # One statement locks, updates and reports the counters; progress is a function of them.
            rows = await run(session, update, {"id": component_id, "dn": d_count, "ds": d_sum, "de": d_estimate})
            if not rows:
                raise NotFound(f"no component with id {component_id}")
            project_id, count, total = rows[0]
            project_id = statements.as_uuid(project_id)
            projects[component_id] = project_id
            old, new = mean(total - d_sum, count - d_count), mean(total, count)
            if new != old:
                project_deltas[project_id] = project_deltas.get(project_id, 0) + new - old
        for project_id in sorted(project_deltas):
            await self._project_roll_up(session, project_id, 0, project_deltas[project_id])
        return projects

    async def _project_roll_up(self, session: AsyncSession, project_id: uuid.UUID, d_count: int, d_sum: int) -> bool:
        """Add ``d_count`` components and ``d_sum`` progress to a project; whether it exists."""
        statement = self.lender.statement(("project-roll-up",), statements.roll_up_project)
        return bool(await self.lender.run(session, statement, {"id": project_id, "dn": d_count, "ds": d_sum}))

    # -- projects ----------------------------------------------------------------------------------
    async def create_project(self, data: Mapping[str, Any], actor: Any) -> dict[str, Any]:
        now = utcnow()
        row = {
            "id": new_id(),
            **data,
            "progress": 0,
            "completed_at": now if data["status"] in FINISHED else None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "component_count": 0,
            "component_progress_sum": 0,
        }
        async with self.lender.transaction() as session:
            await session.execute(sa.insert(PROJECTS).values(row))
            after = render("projects", row)
            await self._publish(session, "projects.created", row, actor, after=after)
        return after

    async def update_project(
        self, ident: uuid.UUID, changes: Mapping[str, Any], if_match: int | None, actor: Any
    ) -> dict[str, Any]:
        async with self.lender.transaction() as session:
            row = await self._row(session, "projects", ident)
            check_version("projects", row, if_match)
            new = apply_changes("projects", row, changes)
            if new is None:
                return render("projects", row)
            await self._update(session, "projects", row, new)
            before, after = render("projects", row), render("projects", new)
            await self._publish(session, "projects.updated", new, actor, before=before, after=after)
        return after

    async def delete_project(self, ident: uuid.UUID, if_match: int | None, actor: Any) -> None:
        async with self.lender.transaction() as session:
            project = await self._row(session, "projects", ident, lock=False)
            check_version("projects", project, if_match)
            tasks = (
                await session.execute(
                    sa.select(TASKS).where(TASKS.c.project_id == ident).order_by(TASKS.c.id).with_for_update()
                )
            ).mappings()
            for task in tasks:
                await self._publish(session, "tasks.deleted", task, actor, before=render("tasks", task))
            components = list(
                (
                    await session.execute(
                        sa.select(COMPONENTS)
                        .where(COMPONENTS.c.project_id == ident)
                        .order_by(COMPONENTS.c.id)
                        .with_for_update()
                    )
                ).mappings()
            )
            deps = await self._depends_on(session, [c["id"] for c in components])
            for component in components:
                before = render("components", {**component, "depends_on": deps[component["id"]]})
                await self._publish(session, "components.deleted", component, actor, before=before)
            project = await self._row(session, "projects", ident)
            check_version("projects", project, if_match)
            await self._publish(session, "projects.deleted", project, actor, before=render("projects", project))
            await session.execute(sa.delete(DEPENDENCIES).where(DEPENDENCIES.c.project_id == ident))
            await session.execute(sa.delete(TASKS).where(TASKS.c.project_id == ident))
            await session.execute(sa.delete(COMPONENTS).where(COMPONENTS.c.project_id == ident))
            await session.execute(sa.delete(PROJECTS).where(PROJECTS.c.id == ident))

    # -- components --------------------------------------------------------------------------------
    async def create_component(self, project_id: uuid.UUID, data: Mapping[str, Any], actor: Any) -> dict[str, Any]:
        now = utcnow()
        row = {
            "id": new_id(),
            "project_id": project_id,
            **data,
            "progress": 0,
            "completed_at": now if data["status"] in FINISHED else None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "task_count": 0,
            "task_progress_sum": 0,
            "task_estimate_minutes": 0,
        }
        async with self.lender.transaction() as session:
            if not await self._project_roll_up(session, project_id, 1, 0):
                raise NotFound(f"no project with id {project_id}")
            await session.execute(sa.insert(COMPONENTS).values(row))
            after = render("components", {**row, "depends_on": []})
            await self._publish(session, "components.created", row, actor, after=after)
        return after

    async def update_component(
        self, ident: uuid.UUID, changes: Mapping[str, Any], if_match: int | None, actor: Any
    ) -> dict[str, Any]:
        async with self.lender.transaction() as session:
            row = await self._row(session, "components", ident)
            check_version("components", row, if_match)
            new = apply_changes("components", row, changes)
            before = await self._component_doc(session, row)
            if new is None:
                return before
            await self._update(session, "components", row, new)
            after = {**render("components", new), "depends_on": before["depends_on"]}
            await self._publish(session, "components.updated", new, actor, before=before, after=after)
        return after

    async def delete_component(self, ident: uuid.UUID, if_match: int | None, actor: Any) -> None:
        async with self.lender.transaction() as session:
            tasks = (
                await session.execute(
                    sa.select(TASKS).where(TASKS.c.component_id == ident).order_by(TASKS.c.id).with_for_update()
                )
            ).mappings()
            deleted = [dict(t) for t in tasks]
            row = await self._row(session, "components", ident)
            check_version("components", row, if_match)
            for task in deleted:
                await self._publish(session, "tasks.deleted", task, actor, before=render("tasks", task))
            before = await self._component_doc(session, row)
            await self._publish(session, "components.deleted", row, actor, before=before)
            either_end = sa.or_(DEPENDENCIES.c.component_id == ident, DEPENDENCIES.c.depends_on_id == ident)
            await session.execute(sa.delete(DEPENDENCIES).where(either_end))
            await session.execute(sa.delete(TASKS).where(TASKS.c.component_id == ident))
            await session.execute(sa.delete(COMPONENTS).where(COMPONENTS.c.id == ident))
            await self._project_roll_up(session, row["project_id"], -1, -row["progress"])

    # -- tasks -------------------------------------------------------------------------------------
    async def create_task(self, component_id: uuid.UUID, data: Mapping[str, Any], actor: Any) -> dict[str, Any]:
        now = utcnow()
        row = {
            "id": new_id(),
            "component_id": component_id,
            **data,
            "completed_at": now if data["status"] in FINISHED else None,
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        if row["progress"] is None:
            row["progress"] = 100 if row["status"] == "done" else 0
        async with self.lender.transaction() as session:
            delta = (1, row["progress"], row["estimate_minutes"] or 0)
            row["project_id"] = (await self._roll_up(session, {component_id: delta}))[component_id]
            insert = self.lender.statement(("insert-task",), statements.insert_task)
            await self.lender.run(
                session,
                insert,
                {
                    **row,
                    "labels": statements.json_text(row["labels"]),
                    "metadata": statements.json_text(row["metadata"]),
                },
            )
            after = render("tasks", row)
            await self._publish(session, "tasks.created", row, actor, after=after)
        return after

    async def update_tasks(
        self, changes: Mapping[uuid.UUID, tuple[Mapping[str, Any], int | None]], actor: Any
    ) -> list[dict[str, Any]]:
        """Apply ``{task_id: (changes, expected version)}`` all or nothing; the documents after."""
        async with self.lender.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(TASKS).where(TASKS.c.id.in_(list(changes))).order_by(TASKS.c.id).with_for_update()
                )
            ).mappings()
            found = {r["id"]: dict(r) for r in rows}
            missing = [str(i) for i in changes if i not in found]
            if missing:
                raise NotFound(f"no task with id {missing[0]}", missing=missing)
            deltas: dict[uuid.UUID, tuple[int, int, int]] = {}
            results = []
            for ident, (patch, expected) in changes.items():
                row = found[ident]
                check_version("tasks", row, expected)
                new = apply_changes("tasks", row, patch)
                if new is None:
                    results.append(render("tasks", row))
                    continue
                await self._update(session, "tasks", row, new)
                d_sum = new["progress"] - row["progress"]
                d_estimate = (new["estimate_minutes"] or 0) - (row["estimate_minutes"] or 0)
                if d_sum or d_estimate:
                    _, s, e = deltas.get(row["component_id"], (0, 0, 0))
                    deltas[row["component_id"]] = (0, s + d_sum, e + d_estimate)
                before, after = render("tasks", row), render("tasks", new)
                await self._publish(session, "tasks.updated", new, actor, before=before, after=after)
                results.append(after)
            await self._roll_up(session, deltas)
        return results

    async def delete_task(self, ident: uuid.UUID, if_match: int | None, actor: Any) -> None:
        async with self.lender.transaction() as session:
            row = await self._row(session, "tasks", ident)
            check_version("tasks", row, if_match)
            await session.execute(sa.delete(TASKS).where(TASKS.c.id == ident))
            delta = (-1, -row["progress"], -(row["estimate_minutes"] or 0))
            await self._roll_up(session, {row["component_id"]: delta})
            await self._publish(session, "tasks.deleted", row, actor, before=render("tasks", row))

    # -- dependencies ------------------------------------------------------------------------------
    async def add_dependency(
        self, component_id: uuid.UUID, depends_on_id: uuid.UUID, actor: Any
    ) -> tuple[dict[str, Any], bool]:
        """The edge and whether it is new. Refuses self-edges, cross-project edges and cycles."""
        if component_id == depends_on_id:
            raise invalid("depends_on_id", "a component cannot depend on itself")
        async with self.lender.transaction() as session:
            source = await self._row(session, "components", component_id, lock=False)
            target = await self._row(session, "components", depends_on_id, lock=False)
            if source["project_id"] != target["project_id"]:
                raise invalid("depends_on_id", "both components must belong to the same project")
            project_id = source["project_id"]
            # One writer per project graph at a time: the cycle check and the insert must not interleave.
            await self._row(session, "projects", project_id)
            edges = await session.execute(
                sa.select(DEPENDENCIES.c.component_id, DEPENDENCIES.c.depends_on_id).where(
                    DEPENDENCIES.c.project_id == project_id
                )
            )
            deps: dict[uuid.UUID, set[uuid.UUID]] = {}
            for src, dst in edges:
                deps.setdefault(src, set()).add(dst)
            existing = depends_on_id in deps.get(component_id, ())
            if existing:
                created = (
                    await session.execute(
                        sa.select(DEPENDENCIES.c.created_at).where(
                            DEPENDENCIES.c.component_id == component_id,
                            DEPENDENCIES.c.depends_on_id == depends_on_id,
                        )
                    )
                ).scalar_one()
            else:
                cycle = cycle_if_added(deps, component_id, depends_on_id)
                if cycle is not None:
                    names = await self._names(session, cycle)
                    raise Conflict(
                        "the dependency would create a cycle: " + " -> ".join(names),
                        slug="dependency-cycle",
                        cycle=[str(c) for c in cycle],
                    )
                created = utcnow()
            edge = {
                "component_id": component_id,
                "depends_on_id": depends_on_id,
                "project_id": project_id,
                "created_at": created,
            }
            if not existing:
                await session.execute(sa.insert(DEPENDENCIES).values(edge))
                await events.publish(
                    self.kernel,
                    session,
                    "components.dependency_added",
                    component_id,
                    actor,
                    project_id,
                    after=_edge_doc(edge),
                )
        return _edge_doc(edge), not existing

    async def remove_dependency(self, component_id: uuid.UUID, depends_on_id: uuid.UUID, actor: Any) -> None:
        async with self.lender.transaction() as session:
            where = sa.and_(DEPENDENCIES.c.component_id == component_id, DEPENDENCIES.c.depends_on_id == depends_on_id)
            edge = (await session.execute(sa.select(DEPENDENCIES).where(where))).mappings().first()
            if edge is None:
                raise NotFound(f"component {component_id} does not depend on {depends_on_id}")
            await session.execute(sa.delete(DEPENDENCIES).where(where))
            await events.publish(
                self.kernel,
                session,
                "components.dependency_removed",
                component_id,
                actor,
                edge["project_id"],
                before=_edge_doc(edge),
            )

    @staticmethod
    async def _names(session: AsyncSession, ids: list[uuid.UUID]) -> list[str]:
        rows = await session.execute(sa.select(COMPONENTS.c.id, COMPONENTS.c.name).where(COMPONENTS.c.id.in_(ids)))
        names = {row[0]: row[1] for row in rows}
        return [f"{names.get(i, '?')} ({i})" for i in ids]


def _edge_doc(edge: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "component_id": str(edge["component_id"]),
        "depends_on_id": str(edge["depends_on_id"]),
        "project_id": str(edge["project_id"]),
        "created_at": rfc3339(edge["created_at"]),
    }


def as_row(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated input (``model_dump()``) as column values: enums as plain strings."""
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in data.items()}
