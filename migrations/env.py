"""Alembic environment: always run online, on the connection the kernel's Migrator hands over."""

from alembic import context
from sqlmodel import SQLModel

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run migrations through `taylordash db …`, which supplies the database connection")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
