"""Settings of the events plugin (``[plugins.events]`` or ``TD_PLUGINS__EVENTS__<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class EventsSettings(BaseModel):
    """How the live stream behaves."""

    heartbeat_seconds: float = Field(15.0, gt=0, le=300, description="Idle time before a stream sends a heartbeat")
    live_poll_seconds: float = Field(
        0.5, gt=0, le=30, description="How often the live feed looks for events mirrored by other instances"
    )
