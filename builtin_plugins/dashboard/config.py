"""Settings of the dashboard (``[plugins.dashboard]`` or ``TD_PLUGINS__DASHBOARD__<FIELD>``)."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field, field_validator


class DashboardSettings(BaseModel):
    """Kiosk accounts and page sizes."""

    model_config = {"extra": "forbid"}

    kiosk: dict[str, str] = Field(
        default_factory=dict,
        description="Username → the one page (a dashboard path) that account sees, full-screen without "
        'navigation: a wall display or tablet. E.g. {"wallboard": "/projects/<id>"}',
    )
    overview_projects: int = Field(100, ge=1, le=500, description="Projects listed on the overview")
    feed_events: int = Field(15, ge=1, le=200, description="Events shown in the live feeds at first render")

    @field_validator("kiosk", mode="before")
    @classmethod
    def _from_text(cls, value: object) -> object:
        """The environment gives a string: JSON (``{"wallboard": "/"}``) or ``user=/path,user2=/path``."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        return dict(item.split("=", 1) for item in text.split(",") if "=" in item)

    @field_validator("kiosk")
    @classmethod
    def _paths(cls, value: dict[str, str]) -> dict[str, str]:
        for user, page in value.items():
            if not page.startswith("/") or page.startswith("//"):
                raise ValueError(f"the kiosk page of {user!r} must be a path on this site, like /projects")
        return {user.strip().casefold(): page for user, page in value.items()}
