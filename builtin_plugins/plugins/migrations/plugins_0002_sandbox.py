"""Sandbox state: api call tallies on plugin_api_access, and the plugin_kv store.

Revision ID: plugins_0002
Revises: plugins_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "plugins_0002"
down_revision = "plugins_0001"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")
TALLIES = ("calls", "refused", "failed")


def upgrade() -> None:
    with op.batch_alter_table("plugin_api_access") as batch:
        for name in TALLIES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("total_ms", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("max_ms", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_outcome", sa.String(20), nullable=True))
        batch.add_column(sa.Column("last_method", sa.String(100), nullable=True))
        batch.add_column(sa.Column("last_called_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "plugin_kv",
        sa.Column("plugin_id", sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", JSON_DOCUMENT, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plugin_kv")
    with op.batch_alter_table("plugin_api_access") as batch:
        for name in ("last_called_at", "last_method", "last_outcome", "max_ms", "total_ms", *reversed(TALLIES)):
            batch.drop_column(name)
