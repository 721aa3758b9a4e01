"""Monitoring tables: application_logs, log_stream, system_metrics, retention_policies.

Revision ID: monitoring_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "monitoring_0001"
down_revision = None
branch_labels = ("monitoring",)
depends_on = "kernel_0001"


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "application_logs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _when("ts"),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("logger", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("instance", sa.String(100), nullable=False),
        sa.Column("context", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    op.create_index("ix_application_logs_ts_id", "application_logs", ["ts", "id"])
    op.create_index("ix_application_logs_level_ts", "application_logs", ["level", "ts"])
    op.create_index("ix_application_logs_service_ts", "application_logs", ["service", "ts"])
    op.create_index("ix_application_logs_trace_id", "application_logs", ["trace_id"])

    op.create_table(
        "log_stream",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("log_id", sa.Uuid(), nullable=False),
        _when("created_at"),
    )
    op.create_index("ix_log_stream_created_at", "log_stream", ["created_at"])

    op.create_table(
        "system_metrics",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _when("recorded_at"),
        sa.Column("instance", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_system_metrics_name_recorded", "system_metrics", ["name", "recorded_at"])
    op.create_index("ix_system_metrics_recorded_at", "system_metrics", ["recorded_at"])

    op.create_table(
        "retention_policies",
        sa.Column("table_name", sa.String(100), primary_key=True),
        sa.Column("max_age_days", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _when("updated_at"),
        _when("last_run_at", nullable=True),
        sa.Column("last_deleted", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
    op.drop_index("ix_system_metrics_recorded_at", table_name="system_metrics")
    op.drop_index("ix_system_metrics_name_recorded", table_name="system_metrics")
    op.drop_table("system_metrics")
    op.drop_index("ix_log_stream_created_at", table_name="log_stream")
    op.drop_table("log_stream")
    for name in ("trace_id", "service_ts", "level_ts", "ts_id"):
        op.drop_index(f"ix_application_logs_{name}", table_name="application_logs")
    op.drop_table("application_logs")
