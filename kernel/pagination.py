"""Cursor pagination shared by every list endpoint: ``{"items": [...], "next_cursor": ...}``.

Cursors are opaque to clients: base64url JSON of the sort key of the last row returned. Lists are
read with keyset conditions (``(key, id) < (last_key, last_id)``), so a page costs the same at any
depth and rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.sql.elements import ColumnElement

from kernel.errors import BadRequest

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageQuery(BaseModel):
    """Query parameters every list endpoint takes; subclass it to add filters."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page")
    cursor: str | None = Field(None, max_length=1024, description="`next_cursor` of the previous page")


class Page(BaseModel, Generic[T]):
    """One page of a list: the items and the cursor of the next page (``null`` on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def invalid_cursor() -> BadRequest:
    return BadRequest("the cursor is not one this API returned", slug="invalid-cursor")


def encode_cursor(values: Sequence[Any]) -> str:
    """Opaque cursor for the JSON-able sort key ``values``."""
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The sort key inside ``cursor``; 400 ``invalid-cursor`` unless it has ``size`` scalar values."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise invalid_cursor() from None
    if not isinstance(values, list) or len(values) != size:
        raise invalid_cursor()
    if not all(v is None or isinstance(v, int | float) or (isinstance(v, str) and "\x00" not in v) for v in values):
        raise invalid_cursor()
    return values


def keyset_after(columns: Sequence[Any], values: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in ``ORDER BY columns`` (all ascending or all descending).

    A row-value comparison, ``(a, b) > (:a, :b)``: PostgreSQL and SQLite walk an index on ``columns``
    from the cursor on. The equivalent ``a > :a OR (a = :a AND b > :b)`` can only seek on ``a``, so a
    page deep inside many rows sharing one ``a`` (a bulk import's timestamp) rescans all of them."""
    if len(columns) != len(values) or not columns:
        raise ValueError("keyset_after needs one value per column")
    # Plain values are bound with their column's type, as ``column > value`` would bind them.
    bound = [
        v if isinstance(v, ColumnElement) else sa.literal(v, getattr(c, "type", None))
        for c, v in zip(columns, values, strict=True)
    ]
    left, right = sa.tuple_(*columns), sa.tuple_(*bound)
    return left < right if descending else left > right


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """The first ``limit`` rows of a ``limit + 1`` fetch, and whether another page exists."""
    return list(rows[:limit]), len(rows) > limit
