"""The MCP tool of the events plugin: the latest mirrored events, filtered like ``GET /api/v1/events``."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from builtin_plugins.events.schemas import EventQuery, _pattern
from sdk import McpTool, Principal


class RecentEvents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(None, max_length=255, description="MQTT topic filter, e.g. tracker/events/projects/#")
    type: str | None = Field(None, max_length=200, description="Exact event type, e.g. projects.created")
    subject_id: str | None = Field(None, max_length=200, description="Only events about this object")
    since: AwareDatetime | None = Field(None, description="Only events that occurred at or after (RFC 3339)")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1024, description="next_cursor of the previous call")

    _topic = field_validator("topic")(_pattern)


def tools(kernel: Any) -> list[McpTool]:
    async def recent_events(args: RecentEvents, principal: Principal) -> Any:
        admin = kernel.permissions.allows(principal, "events:admin")
        query = EventQuery.model_validate(args.model_dump(exclude_none=True))
        page = await kernel.services["events"].list_events(query, admin)
        return page.model_dump(mode="json")

    return [
        McpTool(
            "events_recent",
            "The latest events, newest first (auth events only for holders of events:admin)",
            "events:read",
            recent_events,
            RecentEvents,
            {"readOnlyHint": True},
        )
    ]
