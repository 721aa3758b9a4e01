"""The indexed router picks the same route as Starlette's linear scan, for every kind of path; where
the path exists but not for the method, its 405 names the methods of every route declared for it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router

from kernel.router import IndexedRouter


def endpoint(name: str):
    async def respond(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return respond


PATHS = [
    ("/api/v1/projects", ("GET", "POST")),
    ("/api/v1/projects/import", ("POST",)),
    ("/api/v1/projects/{id}", ("GET", "PATCH")),
    ("/api/v1/projects/{id}/graph", ("GET",)),
    ("/api/v1/proj{suffix:path}", ("GET",)),
    ("/api/v1/{kind}/{id}", ("GET",)),
    ("/api/v1/x/{plugin}/{rest:path}", ("GET",)),
    ("/health/live", ("GET",)),
    ("/health/{name}", ("GET",)),
    ("/metrics", ("GET",)),
    ("/a/b/c/", ("GET",)),
    ("/", ("GET",)),
]


def routes() -> list:
    table = [Route(path, endpoint(path), methods=list(methods)) for path, methods in PATHS]
    table.insert(4, Mount("/api/v1/files", app=PlainTextResponse("mounted")))
    return table


def app(router_class: type[Router]) -> Starlette:
    application = Starlette()
    application.router = router_class(routes=routes())
    return application


async def answers(
    application: Starlette, method: str, path: str, root_path: str = ""
) -> tuple[int, bytes, str | None, str | None]:
    """Status, body, redirect target and ``Allow`` header of one request, sent straight to the ASGI
    app (any path, even ones an HTTP client would refuse to send)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("test", 80),
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"test")],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await application(scope, receive, send)
    headers = dict(sent[0].get("headers", []))
    body = b"".join(m.get("body", b"") for m in sent[1:])
    location, allow = headers.get(b"location"), headers.get(b"allow")
    return sent[0]["status"], body, location.decode() if location else None, allow.decode() if allow else None


def declared_methods(path: str) -> set[str]:
    """Every method some route of the table declares for ``path`` (HEAD comes with GET)."""
    return {m for r in routes() if isinstance(r, Route) and r.path_regex.match(path) for m in r.methods or ()}


async def assert_same_answer(method: str, path: str) -> None:
    ours = await answers(app(IndexedRouter), method, path)
    theirs = await answers(app(Router), method, path)
    if theirs[0] != 405:
        assert ours == theirs
        return
    status, body, location, allow = ours
    assert (status, location) == (405, None)
    assert json.loads(body)["type"] == "urn:taylordash:problem:method-not-allowed"
    assert allow == ", ".join(sorted(declared_methods(path)))
    assert set(theirs[3].split(", ")) <= set(allow.split(", "))


SAMPLES = [
    "/api/v1/projects",
    "/api/v1/projects/",
    "/api/v1/projects/import",
    "/api/v1/projects/42",
    "/api/v1/projects/42/graph",
    "/api/v1/projectsx",
    "/api/v1/proj",
    "/api/v1/projfoo/bar",
    "/api/v1/tasks/7",
    "/api/v1/files/a.txt",
    "/api/v1/x/stats/summary/today",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/metrics/",
    "/a/b/c",
    "/a/b/c/",
    "/",
    "/nowhere/at/all/here",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", SAMPLES)
async def test_same_answer_as_starlette(method: str, path: str) -> None:
    await assert_same_answer(method, path)


segment = st.sampled_from(["api", "v1", "projects", "import", "42", "graph", "x", "health", "live", "a", "b", "c", ""])


@settings(max_examples=150, deadline=None)
@given(st.lists(segment, min_size=0, max_size=6), st.sampled_from(["GET", "POST"]))
async def test_any_path_gets_the_same_answer(parts: list[str], method: str) -> None:
    path = "/" + "/".join(parts)
    await assert_same_answer(method, path)


def test_routes_added_later_are_found() -> None:
    router = IndexedRouter(routes=routes())
    assert all(r.path != "/api/v1/late/{id}" for r in router.candidates("/api/v1/late/1"))
    router.routes.append(Route("/api/v1/late/{id}", endpoint("late")))
    assert [r.path for r in router.candidates("/api/v1/late/1")][-1] == "/api/v1/late/{id}"


def test_candidates_are_narrowed_by_prefix() -> None:
    router = IndexedRouter(routes=routes())
    candidates = [r.path for r in router.candidates("/api/v1/projects/42")]
    assert "/api/v1/projects/{id}" in candidates and "/api/v1/x/{plugin}/{rest:path}" not in candidates
    assert "/api/v1/proj{suffix:path}" in candidates  # a parameter inside a segment: no key, always tried


async def test_behind_a_root_path_routes_match_and_405_names_every_method() -> None:
    application = app(IndexedRouter)
    found = await answers(application, "GET", "/api/v1/projects/42", root_path="/td")
    assert found[:1] == (200,) and b"/api/v1/projects/{id}" in found[1]
    status, body, _, allow = await answers(application, "DELETE", "/api/v1/projects/import", root_path="/td")
    assert status == 405 and json.loads(body)["type"] == "urn:taylordash:problem:method-not-allowed"
    assert allow == ", ".join(sorted(declared_methods("/api/v1/projects/import"))) == "GET, HEAD, PATCH, POST"
