"""Settings of the MCP plugin (``[plugins.mcp]`` or ``TD_PLUGINS__MCP__<FIELD>``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class McpSettings(BaseModel):
    """How managed MCP servers are supervised, and how TaylorDash serves MCP at ``/mcp``."""

    secrets_key: SecretStr | None = Field(
        None,
        description="Key material for encrypting server env and headers at rest "
        "(default: derived from TD_SECRET_KEY; changing it makes stored secrets unreadable)",
    )
    autostart: bool = Field(True, description="Start servers marked autostart when the kernel starts")
    start_timeout_seconds: float = Field(30.0, gt=0, le=600, description="Spawn/connect plus initialize")
    ping_interval_seconds: float = Field(10.0, gt=0, le=3600, description="Time between health pings")
    ping_timeout_seconds: float = Field(5.0, gt=0, le=300, description="A ping slower than this fails")
    failures_before_restart: int = Field(
        3, ge=1, le=100, description="Failed pings in a row (degraded meanwhile) before the server is restarted"
    )
    call_timeout_seconds: float = Field(60.0, gt=0, le=3600, description="Default timeout of one tool call")
    restart_backoff_seconds: float = Field(1.0, gt=0, le=300, description="Delay before the first restart")
    restart_backoff_max_seconds: float = Field(60.0, gt=0, le=3600, description="Cap of the restart delay")
    stderr_lines: int = Field(200, ge=0, le=10_000, description="Last stderr lines of a server kept for the API")
    serve: bool = Field(True, description="Serve TaylorDash's own tools over MCP at /mcp")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"],
        description="Host headers /mcp accepts (DNS-rebinding protection; 'host:*' allows any port)",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        description="Origin headers /mcp accepts from browsers",
    )
