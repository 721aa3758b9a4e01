"""Filters shared by the events and dead-letter listings: topic patterns in SQL, opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import sqlalchemy as sa

from sdk import BadRequest

ADMIN_ONLY_TOPICS = "tracker/events/auth/#"
"""Auth events carry user ids and addresses: only holders of ``events:admin`` see them."""


def _escape(level: str) -> str:
    return level.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def topic_condition(column: Any, pattern: str) -> tuple[sa.ColumnElement[bool], bool]:
    """SQL selecting the topics matching the MQTT filter ``pattern`` and whether it is exact (when it is
    not, rows must be checked again with ``kernel.bus.matches``). A ``+`` becomes one ``LIKE`` wildcard,
    kept to one level by comparing the number of ``/`` in the topic."""
    levels = pattern.split("/")
    if "+" not in levels and "#" not in levels:
        return column == pattern, True
    tail = levels[-1] == "#"
    head = levels[:-1] if tail else levels
    if not head:
        return sa.true(), True
    like = "/".join("%" if level == "+" else _escape(level) for level in head)
    slashes = sa.func.length(column) - sa.func.length(sa.func.replace(column, "/", ""))
    whole = sa.and_(column.like(like, escape="\\"), slashes == len(head) - 1)
    if not tail:
        return whole, True
    # '#' also matches the parent level itself; a '+' before it could span levels in LIKE.
    return sa.or_(whole, column.like(like + "/%", escape="\\")), "+" not in head


def encode_cursor(value: Any) -> str:
    """An opaque cursor for ``value`` (a number or a string)."""
    return base64.urlsafe_b64encode(json.dumps([value]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    """The value inside ``cursor``; a malformed one is a 400 ``invalid-cursor`` problem."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise BadRequest("the cursor is not one this API returned", slug="invalid-cursor") from None
    if not isinstance(value, list) or len(value) != 1:
        raise BadRequest("the cursor is not one this API returned", slug="invalid-cursor")
    return value[0]
