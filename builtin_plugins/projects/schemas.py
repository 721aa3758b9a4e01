"""Request and response models of the projects API (they also document it in ``/openapi.json``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import to_json

from builtin_plugins.projects.models import ComponentStatus, ProjectStatus, TaskStatus
from sdk import PageQuery

MAX_METADATA_BYTES = 16_384


def rfc3339(value: datetime) -> str:
    """UTC with microseconds and ``Z``: the one timestamp format of this API (SQL renders the same).
    ``isoformat`` keeps the year at four digits, as RFC 3339 wants (``strftime("%Y")`` does not
    before the year 1000)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in the year 0 in UTC
        raise ValueError("the timestamp is outside the range of years 1 to 9999 in UTC") from None


Timestamp = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]
UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""An input timestamp with its offset, converted to UTC (422 when UTC would leave years 1 to 9999)."""
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Person = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Labels = Annotated[list[Label], Field(max_length=50)]
Progress = Annotated[int, Field(ge=0, le=100)]
Minutes = Annotated[int, Field(ge=0, le=10_000_000)]


def _check_metadata(value: dict[str, Any]) -> dict[str, Any]:
    if len(to_json(value)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must serialize to at most {MAX_METADATA_BYTES} bytes")
    return value


Metadata = Annotated[dict[str, Any], Field(description="Free-form JSON object (at most 16 KiB)")]


class Position(BaseModel):
    """Where the dashboard draws a component."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("metadata", check_fields=False)
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return value if value is None else _check_metadata(value)


# -- projects ---------------------------------------------------------------------------------------
class ProjectCreate(_Input):
    name: Name
    description: Description = ""
    status: ProjectStatus = ProjectStatus.planning
    owner: Person | None = None
    labels: Labels = []
    metadata: Metadata = {}
    start_date: date | None = None
    due_date: date | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> ProjectCreate:
        if self.start_date and self.due_date and self.due_date < self.start_date:
            raise ValueError("due_date is before start_date")
        return self


class ProjectUpdate(_Input):
    """Only the fields present change; ``null`` clears an optional field."""

    name: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    status: ProjectStatus = None  # type: ignore[assignment]
    owner: Person | None = None
    labels: Labels = None  # type: ignore[assignment]
    metadata: Metadata = None  # type: ignore[assignment]
    start_date: date | None = None
    due_date: date | None = None


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    status: ProjectStatus
    progress: int = Field(description="Mean progress of the components (derived)")
    owner: str | None
    labels: list[str]
    metadata: dict[str, Any]
    start_date: date | None
    due_date: date | None
    completed_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    version: int = Field(description="Bumped by every direct change; the ETag")
    component_count: int


# -- components -------------------------------------------------------------------------------------
class ComponentCreate(_Input):
    name: Name
    description: Description = ""
    status: ComponentStatus = ComponentStatus.planned
    owner: Person | None = None
    labels: Labels = []
    metadata: Metadata = {}
    position: Position | None = None
    estimate_minutes: Minutes | None = None
    due_date: date | None = None


class ComponentUpdate(_Input):
    name: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    status: ComponentStatus = None  # type: ignore[assignment]
    owner: Person | None = None
    labels: Labels = None  # type: ignore[assignment]
    metadata: Metadata = None  # type: ignore[assignment]
    position: Position | None = None
    estimate_minutes: Minutes | None = None
    due_date: date | None = None


class ComponentOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str
    status: ComponentStatus
    progress: int = Field(description="Mean progress of the tasks (derived)")
    owner: str | None
    labels: list[str]
    metadata: dict[str, Any]
    position: Position | None
    estimate_minutes: int | None
    task_estimate_minutes: int = Field(description="Sum of the tasks' estimates (derived)")
    due_date: date | None
    completed_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    version: int
    task_count: int
    depends_on: list[uuid.UUID] = Field(description="Components this one depends on")


# -- tasks ------------------------------------------------------------------------------------------
class TaskCreate(_Input):
    title: Name
    description: Description = ""
    status: TaskStatus = TaskStatus.todo
    progress: Progress | None = Field(None, description="Defaults to 0, or 100 when the status is done")
    assignee: Person | None = None
    labels: Labels = []
    metadata: Metadata = {}
    estimate_minutes: Minutes | None = None
    due_date: date | None = None


class TaskUpdate(_Input):
    title: Name = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    status: TaskStatus = None  # type: ignore[assignment]
    progress: Progress = None  # type: ignore[assignment]
    assignee: Person | None = None
    labels: Labels = None  # type: ignore[assignment]
    metadata: Metadata = None  # type: ignore[assignment]
    estimate_minutes: Minutes | None = None
    due_date: date | None = None


class TaskOut(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    component_id: uuid.UUID
    title: str
    description: str
    status: TaskStatus
    progress: int
    assignee: str | None
    labels: list[str]
    metadata: dict[str, Any]
    estimate_minutes: int | None
    due_date: date | None
    completed_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class BulkTaskChange(TaskUpdate):
    id: uuid.UUID
    version: int | None = Field(None, description="Refuse with 412 unless the task is at this version")


class BulkTaskUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BulkTaskChange] = Field(min_length=1, max_length=500)

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[BulkTaskChange]) -> list[BulkTaskChange]:
        if len({i.id for i in items}) != len(items):
            raise ValueError("each task may appear once")
        return items


class TaskList(BaseModel):
    items: list[TaskOut]


# -- list queries -----------------------------------------------------------------------------------
def _as_list(value: Any) -> Any:
    if isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


def _sorts(*fields: str) -> Any:
    options = tuple(f for name in fields for f in (name, f"-{name}"))
    return Literal[options]  # type: ignore[valid-type]


class _ListQuery(PageQuery):
    model_config = ConfigDict(extra="forbid")

    label: Label | None = Field(None, description="Only items carrying this label")
    q: str | None = Field(None, max_length=200, description="Full-text search; every word must match (prefix)")
    due_from: date | None = Field(None, description="Due on or after this date")
    due_to: date | None = Field(None, description="Due on or before this date")


class ProjectQuery(_ListQuery):
    status: Annotated[list[ProjectStatus], BeforeValidator(_as_list)] | None = None
    owner: Person | None = None
    sort: _sorts("created_at", "updated_at", "name", "due_date", "progress") = "created_at"  # type: ignore[valid-type]


class ComponentQuery(_ListQuery):
    status: Annotated[list[ComponentStatus], BeforeValidator(_as_list)] | None = None
    owner: Person | None = None
    sort: _sorts("created_at", "updated_at", "name", "due_date", "progress") = "created_at"  # type: ignore[valid-type]


class TaskQuery(_ListQuery):
    status: Annotated[list[TaskStatus], BeforeValidator(_as_list)] | None = None
    assignee: Person | None = None
    sort: _sorts("created_at", "updated_at", "title", "due_date", "progress") = "created_at"  # type: ignore[valid-type]


class AsOfQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: UtcTimestamp | None = Field(None, description="RFC 3339: the state at that moment, from the event log")


# -- graph ------------------------------------------------------------------------------------------
class GraphNode(BaseModel):
    id: uuid.UUID
    name: str
    status: ComponentStatus
    progress: int
    weight_minutes: int = Field(description="estimate_minutes, else the sum of the tasks' estimates")
    level: int


class GraphEdge(BaseModel):
    source: uuid.UUID = Field(description="The dependent component")
    target: uuid.UUID = Field(description="The component it depends on")


class CriticalPath(BaseModel):
    components: list[uuid.UUID]
    total_minutes: int


class Graph(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    topological_order: list[uuid.UUID] = Field(description="Every dependency before its dependents")
    levels: list[list[uuid.UUID]] = Field(description="Level n depends only on levels < n")
    critical_path: CriticalPath


class DependencyOut(BaseModel):
    component_id: uuid.UUID
    depends_on_id: uuid.UUID
    project_id: uuid.UUID
    created_at: Timestamp
