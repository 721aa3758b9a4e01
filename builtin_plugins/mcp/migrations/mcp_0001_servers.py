"""MCP plugin tables: mcp_servers.

Revision ID: mcp_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "mcp_0001"
down_revision = None
branch_labels = ("mcp",)
depends_on = "kernel_0002"

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "mcp_servers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("transport", sa.String(10), nullable=False),
        sa.Column("command", sa.String(1000), nullable=True),
        sa.Column("args", JSONDocument, nullable=False),
        sa.Column("env_encrypted", sa.Text(), nullable=True),
        sa.Column("url", sa.String(2000), nullable=True),
        sa.Column("headers_encrypted", sa.Text(), nullable=True),
        sa.Column("allowed_tools", JSONDocument, nullable=True),
        sa.Column("autostart", sa.Boolean(), nullable=False),
        sa.Column("desired", sa.String(10), nullable=False),
        sa.Column("call_timeout_seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_mcp_servers_name"),
        sa.CheckConstraint("transport IN ('stdio', 'http')", name="ck_mcp_servers_transport"),
        sa.CheckConstraint("desired IN ('running', 'stopped')", name="ck_mcp_servers_desired"),
    )


def downgrade() -> None:
    op.drop_table("mcp_servers")
