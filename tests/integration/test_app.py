"""The app factory against a real database: health, errors, request ids, OpenAPI, docs."""

from __future__ import annotations

from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from kernel.contributions import HealthCheck
from sdk import NotFound, RequestContext, Route, hookimpl
from tests.support.plugins import ExtraPermissions, HeaderAuth

ADMIN = {"x-test-role": "admin"}
VIEWER = {"x-test-role": "viewer"}


class ItemIn(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    size: int = Field(ge=0)


class ItemQuery(BaseModel):
    limit: int = Field(50, ge=1, le=500)


class ItemOut(BaseModel):
    name: str
    size: int


class ItemsPlugin:
    """A plugin with a read route, a write route and a failing route."""

    @hookimpl
    def register_routes(self) -> list[Route]:
        async def create(ctx: RequestContext) -> ItemOut:
            ctx.headers["etag"] = '"1"'
            return ItemOut(**ctx.body.model_dump())

        async def listing(ctx: RequestContext) -> list[ItemOut]:
            return [ItemOut(name="n", size=ctx.query.limit)]

        async def missing(ctx: RequestContext) -> None:
            raise NotFound("no such item", item="x")

        async def crash(ctx: RequestContext) -> None:
            raise RuntimeError("boom")

        return [
            Route(
                "/api/v1/items",
                create,
                methods=("POST",),
                permission="items:write",
                body=ItemIn,
                response=ItemOut,
                status_code=201,
            ),
            Route("/api/v1/items", listing, permission="items:read", query=ItemQuery, response=list[ItemOut]),
            Route("/api/v1/items/missing", missing, permission="items:read"),
            Route("/api/v1/items/crash", crash, permission="items:read"),
        ]


def plugins() -> list[tuple[str, object]]:
    return [
        ("testauth", HeaderAuth()),
        ("perms", ExtraPermissions({"items:read": ["admin", "viewer"], "items:write": ["admin"]})),
        ("items", ItemsPlugin()),
    ]


async def test_health_live_and_ready(start_app):
    async with start_app(plugins()) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


class BrokenCheck:
    @hookimpl
    def register_health_checks(self) -> list[HealthCheck]:
        async def broken() -> None:
            raise ConnectionError("broker unreachable")

        async def fine() -> None:
            return None

        return [HealthCheck("broker", broken), HealthCheck("cache", fine)]


async def test_ready_names_failing_checks(start_app):
    async with start_app([("broken", BrokenCheck())]) as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:taylordash:problem:not-ready"
    assert "broker" in body["detail"] and "cache" not in body["detail"]
    checks = body["checks"]
    assert checks["broker"] == "ConnectionError: broker unreachable"
    assert checks["database"] == "ok" and checks["cache"] == "ok"
    assert [name for name, result in checks.items() if result != "ok"] == ["broker"]


async def test_declared_route_pipeline(start_app):
    async with start_app(plugins()) as client:
        created = await client.post("/api/v1/items", json={"name": "a", "size": 3}, headers=ADMIN)
        listed = await client.get("/api/v1/items?limit=7", headers=VIEWER)
        anonymous = await client.get("/api/v1/items")
        forbidden = await client.post("/api/v1/items", json={"name": "a", "size": 3}, headers=VIEWER)
        invalid = await client.post("/api/v1/items", json={"name": "", "size": -1}, headers=ADMIN)
        malformed = await client.post(
            "/api/v1/items", content=b"{nope", headers={**ADMIN, "content-type": "application/json"}
        )
        wrong_type = await client.post("/api/v1/items", content=b"a=b", headers={**ADMIN, "content-type": "text/plain"})
        too_big = await client.post("/api/v1/items", json={"name": "x" * 2_000_000, "size": 1}, headers=ADMIN)
        bad_query = await client.get("/api/v1/items?limit=0", headers=VIEWER)
        missing = await client.get("/api/v1/items/missing", headers=VIEWER)
        unknown = await client.get("/api/v1/nothing-here", headers=VIEWER)
        wrong_method = await client.delete("/api/v1/items", headers=ADMIN)
    assert created.status_code == 201 and created.json() == {"name": "a", "size": 3}
    assert created.headers["etag"] == '"1"'
    assert listed.json() == [{"name": "n", "size": 7}]
    expectations = [
        (anonymous, 401, "unauthorized"),
        (forbidden, 403, "forbidden"),
        (invalid, 422, "validation-error"),
        (malformed, 400, "malformed-json"),
        (wrong_type, 415, "unsupported-media-type"),
        (too_big, 413, "payload-too-large"),
        (bad_query, 422, "validation-error"),
        (missing, 404, "not-found"),
        (unknown, 404, "not-found"),
        (wrong_method, 405, "method-not-allowed"),
    ]
    for response, status, slug in expectations:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == f"urn:taylordash:problem:{slug}"
        assert response.json()["status"] == status
    assert anonymous.headers["www-authenticate"] == "Bearer"
    # Two routes declare the path: the 405 names the methods of both.
    assert wrong_method.headers["allow"] == "GET, HEAD, POST"
    assert {e["loc"][0] for e in invalid.json()["errors"]} == {"name", "size"}
    assert missing.json()["item"] == "x"


async def test_unexpected_error_is_a_problem_with_request_id(start_app):
    async with start_app(plugins()) as client:
        response = await client.get("/api/v1/items/crash", headers={**VIEWER, "x-request-id": "req-123"})
    assert response.status_code == 500
    assert response.json()["type"] == "urn:taylordash:problem:internal-error"
    assert "boom" not in response.text  # internals stay in the log
    assert response.headers["x-request-id"] == "req-123"


async def test_request_id_generated_and_unsafe_ids_replaced(start_app):
    async with start_app(plugins()) as client:
        generated = await client.get("/health/live")
        unsafe = await client.get("/health/live", headers={"x-request-id": "bad id\twith spaces"})
    assert len(generated.headers["x-request-id"]) == 32
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


async def test_openapi_documents_every_plugin_route(start_app):
    async with start_app(plugins()) as client:
        response = await client.get("/openapi.json")
        docs = await client.get("/docs")
        bundle = await client.get("/static/kernel/swagger-ui/swagger-ui-bundle.js")
    spec = response.json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    items = spec["paths"]["/api/v1/items"]
    assert set(items) == {"get", "post"}
    post = items["post"]
    assert post["x-permission"] == "items:write"
    assert post["security"] == [{"bearerAuth": []}]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemIn"}
    assert set(post["responses"]) >= {"201", "400", "401", "403", "413", "415", "422"}
    assert post["responses"]["403"]["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert items["get"]["parameters"][0]["name"] == "limit"
    assert items["get"]["parameters"][0]["schema"]["maximum"] == 500
    assert spec["paths"]["/health/live"]["get"]["security"] == []
    assert spec["paths"]["/api/v1/plugins/{name}"]["get"]["parameters"][0]["in"] == "path"
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


async def test_static_files_refuse_with_problems(start_app):
    async with start_app(plugins()) as client:
        served = await client.get("/static/kernel/docs.js")
        missing = await client.get("/static/kernel/no-such-file.js")
        posted = await client.post("/static/kernel/docs.js")
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
    for response, status, slug in ((missing, 404, "not-found"), (posted, 405, "method-not-allowed")):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == f"urn:taylordash:problem:{slug}"
        assert response.json()["instance"] == response.request.url.path
    assert posted.headers["allow"] == "GET, HEAD"
