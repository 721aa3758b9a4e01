"""Settings of the monitoring plugin (``[plugins.monitoring]`` / ``TD_PLUGINS__MONITORING__<FIELD>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class MonitoringSettings(BaseModel):
    """Scrape token, database logging, sampling and retention schedules."""

    model_config = ConfigDict(extra="forbid")

    scrape_token: SecretStr | None = Field(
        None, min_length=16, description="Bearer token Prometheus sends to GET /metrics (admins can always scrape)"
    )
    db_logging: bool = Field(True, description="Also write structured logs to the application_logs table")
    db_log_level: LogLevel = Field("info", description="Lowest level written to the database")
    log_queue_size: int = Field(
        20_000, ge=100, description="Log lines waiting for the writer; beyond, lines are dropped"
    )
    log_batch_size: int = Field(500, ge=1, le=10_000, description="Log lines written per database transaction")
    log_flush_seconds: float = Field(1.0, gt=0, le=60, description="Longest a log line waits before it is written")
    sampler_interval_seconds: float = Field(
        60.0, ge=0, description="How often system metrics are stored in system_metrics (0: never)"
    )
    gauge_refresh_seconds: float = Field(5.0, gt=0, description="How often process and pool gauges are refreshed")
    retention_interval_seconds: float = Field(
        3600.0, ge=0, description="How often retention policies are enforced (0: only on demand)"
    )
    retention_batch_size: int = Field(5000, ge=1, description="Rows deleted per statement by the cleanup job")
    stream_poll_seconds: float = Field(1.0, gt=0, le=60, description="How often a live log stream looks for lines")
    stream_heartbeat_seconds: float = Field(15.0, gt=0, description="Idle time after which a stream sends a comment")
    instance_name: str = Field(
        "", max_length=100, description="Name of this instance in logs and samples (default host:pid)"
    )
