"""Models of the MCP API: what it accepts and answers (they document it in /openapi.json)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
TOOL = r"^[A-Za-z0-9_\-.]{1,128}$"
State = Literal["stopped", "starting", "ready", "degraded", "failed"]


class _Reach(BaseModel):
    """How to reach a server: ``command`` (+ ``args``, ``env``) for stdio, or ``url`` (+ ``headers``)."""

    command: str | None = Field(None, min_length=1, max_length=1000, description="Executable of a stdio server")
    args: list[str] | None = Field(None, max_length=200, description="Its arguments")
    env: dict[str, str] | None = Field(None, description="Environment given to the child (stored encrypted)")
    url: str | None = Field(
        None, max_length=2000, pattern=r"^https?://", description="Streamable-HTTP endpoint of a remote server"
    )
    headers: dict[str, str] | None = Field(None, description="HTTP headers sent to it (stored encrypted)")


class ServerEntry(_Reach):
    """One entry of the common ``mcpServers`` document (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="after")
    def _one_way(self) -> ServerEntry:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP)")
        if self.url is not None and (self.args or self.env):
            raise ValueError("args and env apply to stdio servers (command), not to url")
        if self.command is not None and self.headers:
            raise ValueError("headers apply to url servers, not to command")
        return self


class ServerIn(ServerEntry):
    """A server to register."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME, description="Unique name; tools are namespaced by it")
    allowed_tools: list[str] | None = Field(
        None, max_length=1000, description="Tools callers may use (null: every tool the server offers)"
    )
    autostart: bool = Field(True, description="Start with the kernel")
    call_timeout_seconds: float | None = Field(None, gt=0, le=3600, description="Overrides the default")


class ServerPatch(_Reach):
    """Changes to a server; omitted fields stay. ``env``/``headers`` replace the whole map, and a value
    equal to the mask (``********``) keeps the stored value of that name."""

    model_config = ConfigDict(extra="forbid")

    allowed_tools: list[str] | None = Field(None, max_length=1000)
    autostart: bool | None = None
    call_timeout_seconds: float | None = Field(None, gt=0, le=3600)

    @model_validator(mode="after")
    def _not_both(self) -> ServerPatch:
        if self.command is not None and self.url is not None:
            raise ValueError("give either command (stdio) or url (streamable HTTP), not both")
        return self


class ToolsAllowList(BaseModel):
    """The admin-managed allow list of one server."""

    model_config = ConfigDict(extra="forbid")

    allowed_tools: list[str] | None = Field(description="Tool names callers may use; null allows every tool")


class ServerOut(BaseModel):
    """A registered server with its live state. Secret values are masked."""

    id: uuid.UUID
    name: str
    transport: Literal["stdio", "http"]
    command: str | None
    args: list[str]
    env: dict[str, str]
    url: str | None
    headers: dict[str, str]
    allowed_tools: list[str] | None
    autostart: bool
    desired: Literal["running", "stopped"]
    call_timeout_seconds: float | None
    state: State
    pid: int | None = Field(None, description="Process id of a running stdio server (this instance)")
    restarts: int = 0
    last_error: str | None = None
    server_info: dict[str, Any] | None = None
    tools: int = Field(0, description="Number of tools the server offers")
    stderr_tail: list[str] = Field(default_factory=list, description="Last stderr lines (secrets masked)")
    created_at: datetime
    updated_at: datetime


class ServerPage(BaseModel):
    items: list[ServerOut]
    next_cursor: str | None = None


class ImportDoc(BaseModel):
    """``{"mcpServers": {name: {command, args, env, url, headers}}}``."""

    model_config = ConfigDict(populate_by_name=True)

    mcp_servers: dict[str, ServerEntry] = Field(alias="mcpServers", max_length=500)


class ImportQuery(BaseModel):
    replace: bool = Field(False, description="Overwrite servers that already exist (else they are skipped)")


class ImportResult(BaseModel):
    created: list[str]
    updated: list[str]
    skipped: list[str]


class ExportQuery(BaseModel):
    include_secrets: bool = Field(
        False, description="Reveal env and header values (audited); otherwise they are masked"
    )


class ToolOut(BaseModel):
    """A tool of a managed server, namespaced ``<server>.<tool>``."""

    name: str = Field(description="<server>.<tool>")
    server: str
    tool: str
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any]
    annotations: dict[str, Any] | None = None
    allowed: bool = Field(description="Whether the server's allow list lets callers use it")


class ToolQuery(BaseModel):
    server: str | None = Field(None, pattern=NAME, description="Only this server's tools")
    allowed: bool | None = Field(None, description="Only allowed (true) or blocked (false) tools")


class ToolPage(BaseModel):
    items: list[ToolOut]
    next_cursor: str | None = None


class CallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] = Field(default_factory=dict, description="Validated against the tool's input schema")


class CallOut(BaseModel):
    """What the tool answered (MCP ``CallToolResult``)."""

    server: str
    tool: str
    is_error: bool
    content: list[dict[str, Any]]
    structured_content: dict[str, Any] | None = None
    duration_ms: float
