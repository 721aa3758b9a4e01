"""Plugin registry tables: plugins, plugin_configurations, plugin_api_access, plugin_security_violations.

Revision ID: plugins_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "plugins_0001"
down_revision = None
branch_labels = ("plugins",)
depends_on = "kernel_0001"

JSON_DOCUMENT = sa.JSON().with_variant(JSONB(), "postgresql")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _plugin_fk() -> sa.Column:
    return sa.Column("plugin_id", sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("verdict", sa.String(10), nullable=True),
        sa.Column("manifest", JSON_DOCUMENT, nullable=False),
        sa.Column("scan_report", JSON_DOCUMENT, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("package_path", sa.String(500), nullable=True),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("package_size", sa.BigInteger(), nullable=False),
        sa.Column("violations_count", sa.Integer(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("override_by", sa.String(200), nullable=True),
        _when("override_at", nullable=True),
        sa.Column("uploaded_by", sa.String(200), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        _when("scanned_at", nullable=True),
    )
    op.create_index("ix_plugins_status", "plugins", ["status"])

    op.create_table(
        "plugin_configurations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("plugin_id", sa.Uuid(), sa.ForeignKey("plugins.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("config", JSON_DOCUMENT, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=True),
        _when("updated_at"),
    )

    op.create_table(
        "plugin_api_access",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _plugin_fk(),
        sa.Column("permission", sa.String(300), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        _when("updated_at"),
        sa.UniqueConstraint("plugin_id", "permission", name="uq_plugin_api_access_permission"),
    )
    op.create_index("ix_plugin_api_access_plugin_id", "plugin_api_access", ["plugin_id"])

    op.create_table(
        "plugin_security_violations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _plugin_fk(),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("context", JSON_DOCUMENT, nullable=False),
        _when("occurred_at"),
    )
    op.create_index(
        "ix_plugin_security_violations_plugin_time",
        "plugin_security_violations",
        ["plugin_id", "occurred_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("plugin_security_violations")
    op.drop_table("plugin_api_access")
    op.drop_table("plugin_configurations")
    op.drop_index("ix_plugins_status", table_name="plugins")
    op.drop_table("plugins")
