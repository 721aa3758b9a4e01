"""Keyset cursors: every row exactly once across pages, hostile cursors refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from kernel.errors import BadRequest
from kernel.pagination import decode_cursor, encode_cursor, keyset_after, split_page


@pytest.mark.parametrize("descending", [True, False])
def test_pages_cover_every_row_once(descending: bool):
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("k", sa.Integer))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "k": i % 7} for i in range(1, 101)])
    order = (table.c.k.desc(), table.c.id.desc()) if descending else (table.c.k, table.c.id)
    seen: list[int] = []
    cursor = None
    with engine.connect() as conn:
        while True:
            query = sa.select(table).order_by(*order).limit(13 + 1)
            if cursor:
                query = query.where(keyset_after((table.c.k, table.c.id), decode_cursor(cursor, 2), descending))
            rows, more = split_page(conn.execute(query).all(), 13)
            seen.extend(r.id for r in rows)
            if not more:
                break
            cursor = encode_cursor([rows[-1].k, rows[-1].id])
    assert sorted(seen) == list(range(1, 101))
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "cursor", ["!!!", encode_cursor([1]), "eyJhIjoxfQ", encode_cursor([[1], 2]), encode_cursor(["a\x00", 1])]
)
def test_bad_cursors_are_400(cursor: str):
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor, 2)
    assert caught.value.slug == "invalid-cursor"
