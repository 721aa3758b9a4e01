"""Tables of the projects plugin. Same schema on SQLite and PostgreSQL (JSONB there).

Progress rolls up: a component's ``progress`` is the rounded mean of its tasks' progress (kept exact
by the counters ``task_count``/``task_progress_sum``), a project's is the rounded mean of its
components' progress (``component_count``/``component_progress_sum``). Full text: a PostgreSQL GIN
expression index (declared here in the form PostgreSQL reflects it, so schema comparisons agree) and,
on SQLite, FTS5 tables that only the migration knows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel
from uuid_utils.compat import uuid7


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite keeps no offset: restore it on read)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC) if value is not None else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


class ProjectStatus(StrEnum):
    planning = "planning"
    active = "active"
    on_hold = "on_hold"
    completed = "completed"
    archived = "archived"


class ComponentStatus(StrEnum):
    planned = "planned"
    in_progress = "in_progress"
    blocked = "blocked"
    done = "done"


class TaskStatus(StrEnum):
    todo = "todo"
    in_progress = "in_progress"
    blocked = "blocked"
    done = "done"
    cancelled = "cancelled"


FINISHED = {"completed", "done", "cancelled"}
"""Statuses that stamp ``completed_at``."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC, truncated to microseconds like every backend stores it."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """UUIDv7: ids sort by creation time, which keeps the primary-key indexes compact."""
    return uuid7()


def _when(nullable: bool = False) -> Any:
    column = sa.Column(UTCDateTime(), nullable=nullable)
    return Field(default=None, sa_column=column) if nullable else Field(default_factory=utcnow, sa_column=column)


def _fts_index(table: str, document: str) -> sa.Index:
    """The PostgreSQL full-text index (SQLite has FTS5 tables instead, made by the migration)."""
    expression = sa.text(f"to_tsvector('simple'::regconfig, {document})")
    return sa.Index(f"ix_{table}_fts", expression, postgresql_using="gin").ddl_if(dialect="postgresql")


def _json(default: Any, nullable: bool = False) -> Any:
    column = sa.Column(JSONDocument, nullable=nullable)
    if default is None:
        return Field(default=None, sa_column=column)
    return Field(default_factory=default, sa_column=column)


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (
        sa.Index("ix_projects_created", "created_at", "id"),
        sa.Index("ix_projects_updated", "updated_at", "id"),
        sa.Index("ix_projects_name", "name", "id"),
        sa.Index("ix_projects_status", "status", "created_at", "id"),
        sa.Index("ix_projects_owner", "owner", "created_at", "id"),
        _fts_index("projects", "(name::text || ' '::text) || description"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(default="planning", max_length=20)
    progress: int = 0
    owner: str | None = Field(default=None, max_length=200)
    labels: list[str] = _json(list)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column("metadata", JSONDocument, nullable=False))
    start_date: date | None = None
    due_date: date | None = None
    completed_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()
    version: int = 1
    component_count: int = 0
    component_progress_sum: int = 0


class Component(SQLModel, table=True):
    __tablename__ = "components"
    __table_args__ = (
        sa.Index("ix_components_project_created", "project_id", "created_at", "id"),
        sa.Index("ix_components_project_name", "project_id", "name", "id"),
        _fts_index("components", "(name::text || ' '::text) || description"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False))
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(default="planned", max_length=20)
    progress: int = 0
    owner: str | None = Field(default=None, max_length=200)
    labels: list[str] = _json(list)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column("metadata", JSONDocument, nullable=False))
    position: dict[str, Any] | None = _json(None, nullable=True)
    estimate_minutes: int | None = None
    due_date: date | None = None
    completed_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()
    version: int = 1
    task_count: int = 0
    task_progress_sum: int = 0
    task_estimate_minutes: int = 0


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        sa.Index("ix_tasks_project_created", "project_id", "created_at", "id"),
        sa.Index("ix_tasks_component_created", "component_id", "created_at", "id"),
        sa.Index("ix_tasks_project_status", "project_id", "status", "created_at", "id"),
        sa.Index("ix_tasks_project_assignee", "project_id", "assignee", "created_at", "id"),
        sa.Index("ix_tasks_project_due", "project_id", "due_date"),
        _fts_index("tasks", "(title::text || ' '::text) || description"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    project_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False))
    component_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("components.id"), nullable=False))
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    status: str = Field(default="todo", max_length=20)
    progress: int = 0
    assignee: str | None = Field(default=None, max_length=200)
    labels: list[str] = _json(list)
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column("metadata", JSONDocument, nullable=False))
    estimate_minutes: int | None = None
    due_date: date | None = None
    completed_at: datetime | None = _when(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()
    version: int = 1


class ComponentDependency(SQLModel, table=True):
    """``component_id`` depends on ``depends_on_id`` (both in ``project_id``)."""

    __tablename__ = "component_dependencies"
    __table_args__ = (
        sa.Index("ix_component_dependencies_project", "project_id"),
        sa.Index("ix_component_dependencies_depends_on", "depends_on_id"),
    )

    component_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("components.id"), primary_key=True, nullable=False)
    )
    depends_on_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("components.id"), primary_key=True, nullable=False)
    )
    project_id: uuid.UUID = Field(sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False))
    created_at: datetime = _when()


MODELS = (Project, Component, Task, ComponentDependency)
