"""A test plugin with an API that changes state and publishes events in one transaction.

``POST /api/v1/test/batches/{batch}?size=N`` records batch ``batch`` in ``td_test_batches`` and
publishes N events about it; posting a batch that already committed answers 409, which lets a client
that lost the answer (the server was killed) retry without publishing twice.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sdk import Conflict, Event, RequestContext, Route, hookimpl

TABLE = "td_test_batches"


class Batches:
    @hookimpl
    async def startup(self, kernel: Any) -> None:
        async with kernel.db.engine.begin() as conn:
            await conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS {TABLE} (batch INTEGER PRIMARY KEY)"))

    @hookimpl
    def register_routes(self) -> list[Route]:
        return [
            Route(
                "/api/v1/test/batches/{batch:int}",
                self.post,
                methods=("POST",),
                public=True,
                status_code=201,
                name="test_batches",
            )
        ]

    async def post(self, ctx: RequestContext) -> dict[str, list[str]]:
        batch = ctx.path_params["batch"]
        size = int(ctx.request.query_params.get("size", "100"))
        events = [
            Event.create(
                type="projects.updated", source="tests", subject_id=f"b{batch}", payload={"batch": batch, "n": n}
            )
            for n in range(size)
        ]
        try:
            async with ctx.kernel.db.session() as session:
                connection = await session.connection()
                await connection.execute(sa.text(f"INSERT INTO {TABLE} (batch) VALUES (:b)"), {"b": batch})
                for event in events:
                    await ctx.kernel.publish(session, event)
                await session.commit()
        except sa.exc.IntegrityError:
            raise Conflict(f"batch {batch} is already committed") from None
        return {"ids": [str(event.id) for event in events]}
