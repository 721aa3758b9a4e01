"""Settings of the plugin registry (``[plugins.plugins]`` / ``TD_PLUGINS__PLUGINS__<FIELD>``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class RegistrySettings(BaseModel):
    """Limits and policies of the plugin registry."""

    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="Largest plugin package accepted")
    scan_timeout_seconds: float = Field(300.0, gt=0, description="A scan taking longer fails the upload")
    quarantine_after: int = Field(
        3, ge=1, description="Violations within quarantine_window_seconds after which a plugin is quarantined"
    )
    quarantine_window_seconds: float = Field(600.0, gt=0, description="The window quarantine_after counts in")
    fail_on: Literal["low", "medium", "high"] = Field("medium", description="Lowest severity that fails a scan")
    state_cache_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="How long an instance trusts its cached set of enabled plugins; changes made on any "
        "instance reach the others at once through the bus, this only bounds a missed broadcast",
    )
