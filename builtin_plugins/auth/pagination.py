"""The auth plugin's cursors, on the kernel's shared keyset pagination."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.sql.elements import ColumnElement

from kernel.pagination import decode_cursor, encode_cursor, invalid_cursor, keyset_after, split_page


def encode(values: Sequence[Any]) -> str:
    return encode_cursor(values)


def decode(cursor: str, size: int) -> list[str]:
    """The string sort key inside ``cursor`` (NUL characters, which PostgreSQL refuses, are invalid)."""
    values = decode_cursor(cursor, size)
    if not all(isinstance(v, str) and "\x00" not in v for v in values):
        raise invalid_cursor()
    return values


def newest_first_after(cursor: str, created: Any, ident: Any) -> ColumnElement[bool]:
    """Rows after ``cursor`` in ``created DESC, id DESC`` order."""
    stamp, raw_id = decode(cursor, 2)
    try:
        when, last_id = datetime.fromisoformat(stamp), uuid.UUID(raw_id)
    except ValueError:
        raise invalid_cursor() from None
    if when.tzinfo is None:
        raise invalid_cursor()
    return keyset_after([created, ident], [when, last_id], descending=True)


def newest_first_cursor(created: datetime, ident: uuid.UUID) -> str:
    return encode([created.isoformat(), ident.hex])


def page(rows: list[Any], limit: int) -> tuple[list[Any], bool]:
    """The first ``limit`` rows of a ``limit + 1`` fetch, and whether more exist."""
    return split_page(rows, limit)
