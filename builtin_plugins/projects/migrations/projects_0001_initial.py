"""Projects tables: projects, components, tasks, component_dependencies, and their full-text indexes.

Full text: on PostgreSQL an expression GIN index over ``to_tsvector('simple', …)``; on SQLite one
external-content FTS5 table per searchable table, kept in step by triggers. A later batch-mode
migration that recreates one of these SQLite tables must recreate its triggers and run the FTS5
``'rebuild'`` command (rowids change when a table is copied).

Revision ID: projects_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "projects_0001"
down_revision = None
branch_labels = ("projects",)
depends_on = "kernel_0002"

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
# table -> the text columns searched by `q`
SEARCHABLE = {
    "projects": ("name", "description"),
    "components": ("name", "description"),
    "tasks": ("title", "description"),
}


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _common_tail() -> list[sa.Column]:
    return [
        sa.Column("labels", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        *_common_tail(),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        _when("completed_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("component_count", sa.Integer(), nullable=False),
        sa.Column("component_progress_sum", sa.Integer(), nullable=False),
    )
    op.create_index("ix_projects_created", "projects", ["created_at", "id"])
    op.create_index("ix_projects_updated", "projects", ["updated_at", "id"])
    op.create_index("ix_projects_name", "projects", ["name", "id"])
    op.create_index("ix_projects_status", "projects", ["status", "created_at", "id"])
    op.create_index("ix_projects_owner", "projects", ["owner", "created_at", "id"])

    op.create_table(
        "components",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=True),
        *_common_tail(),
        sa.Column("position", JSON, nullable=True),
        sa.Column("estimate_minutes", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        _when("completed_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("task_count", sa.Integer(), nullable=False),
        sa.Column("task_progress_sum", sa.Integer(), nullable=False),
        sa.Column("task_estimate_minutes", sa.Integer(), nullable=False),
    )
    op.create_index("ix_components_project_created", "components", ["project_id", "created_at", "id"])
    op.create_index("ix_components_project_name", "components", ["project_id", "name", "id"])

    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("component_id", sa.Uuid(), sa.ForeignKey("components.id"), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=True),
        *_common_tail(),
        sa.Column("estimate_minutes", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        _when("completed_at", nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_tasks_project_created", "tasks", ["project_id", "created_at", "id"])
    op.create_index("ix_tasks_component_created", "tasks", ["component_id", "created_at", "id"])
    op.create_index("ix_tasks_project_status", "tasks", ["project_id", "status", "created_at", "id"])
    op.create_index("ix_tasks_project_assignee", "tasks", ["project_id", "assignee", "created_at", "id"])
    op.create_index("ix_tasks_project_due", "tasks", ["project_id", "due_date"])

    op.create_table(
        "component_dependencies",
        sa.Column("component_id", sa.Uuid(), sa.ForeignKey("components.id"), primary_key=True),
        sa.Column("depends_on_id", sa.Uuid(), sa.ForeignKey("components.id"), primary_key=True),
        sa.Column("project_id", sa.Uuid(), sa.ForeignKey("projects.id"), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_component_dependencies_project", "component_dependencies", ["project_id"])
    op.create_index("ix_component_dependencies_depends_on", "component_dependencies", ["depends_on_id"])

    if op.get_bind().dialect.name == "postgresql":
        for table, columns in SEARCHABLE.items():
            document = " || ' ' || ".join(columns)
            op.execute(f"CREATE INDEX ix_{table}_fts ON {table} USING gin (to_tsvector('simple', {document}))")
    else:
        for table, columns in SEARCHABLE.items():
            _create_sqlite_fts(table, columns)


def _create_sqlite_fts(table: str, columns: tuple[str, ...]) -> None:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    op.execute(f"CREATE VIRTUAL TABLE {table}_fts USING fts5({names}, content='{table}', content_rowid='rowid')")
    op.execute(
        f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN "  # noqa: S608 - table and column names are constants of this migration
        f"INSERT INTO {table}_fts(rowid, {names}) VALUES (new.rowid, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "  # noqa: S608 - table and column names are constants of this migration
        f"INSERT INTO {table}_fts({table}_fts, rowid, {names}) VALUES ('delete', old.rowid, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {names} ON {table} BEGIN "  # noqa: S608 - table and column names are constants of this migration
        f"INSERT INTO {table}_fts({table}_fts, rowid, {names}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {table}_fts(rowid, {names}) VALUES (new.rowid, {new}); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SEARCHABLE:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_fts")
    else:
        for table in SEARCHABLE:
            for action in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{action}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    op.drop_table("component_dependencies")
    op.drop_table("tasks")
    op.drop_table("components")
    op.drop_table("projects")
