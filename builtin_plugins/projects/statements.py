"""SQL of the hot write path, built once per dialect by the lender (see ``Lender.statement``)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json

from builtin_plugins.projects.queries import TABLES

COMPONENTS, PROJECTS, TASKS = TABLES["components"], TABLES["projects"], TABLES["tasks"]


def sql_mean(total: Any, count: Any) -> Any:
    """``service.mean`` in SQL: the rounded (half up) integer mean, 0 for nothing."""
    return sa.case((count > 0, (2 * total + count) // (2 * count)), else_=0)


def roll_up_component() -> sa.Update:
    c = COMPONENTS.c
    count = c.task_count + sa.bindparam("dn", type_=sa.Integer())
    total = c.task_progress_sum + sa.bindparam("ds", type_=sa.Integer())
    return (
        sa.update(COMPONENTS)
        .where(c.id == sa.bindparam("id", type_=sa.Uuid))
        .values(
            task_count=count,
            task_progress_sum=total,
            task_estimate_minutes=c.task_estimate_minutes + sa.bindparam("de", type_=sa.Integer()),
            progress=sql_mean(total, count),
        )
        .returning(c.project_id, c.task_count, c.task_progress_sum)
    )


def roll_up_project() -> sa.Update:
    count = PROJECTS.c.component_count + sa.bindparam("dn", type_=sa.Integer())
    total = PROJECTS.c.component_progress_sum + sa.bindparam("ds", type_=sa.Integer())
    return (
        sa.update(PROJECTS)
        .where(PROJECTS.c.id == sa.bindparam("id", type_=sa.Uuid))
        .values(component_count=count, component_progress_sum=total, progress=sql_mean(total, count))
        .returning(PROJECTS.c.id)
    )


def insert_task() -> sa.Insert:
    return sa.insert(TASKS).values({c.name: sa.bindparam(c.name, type_=c.type) for c in TASKS.columns})


def json_text(value: Any) -> str:
    return to_json(value).decode()


def as_uuid(value: Any) -> uuid.UUID:
    # asyncpg returns its own UUID type, SQLite the 32-hex text SQLAlchemy stores.
    return uuid.UUID(hex=value) if isinstance(value, str) else uuid.UUID(bytes=value.bytes)
