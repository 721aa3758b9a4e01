"""SQL helpers the bus and event stores share."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY


def any_of(column: Any, name: str, item_type: Any, sqlite: bool) -> sa.ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``: ``= ANY(:name)`` on PostgreSQL (one prepared
    statement for every list length), an expanding ``IN`` on SQLite."""
    if sqlite:
        return column.in_(sa.bindparam(name, expanding=True))
    return column == sa.any_(sa.bindparam(name, type_=ARRAY(item_type)))
