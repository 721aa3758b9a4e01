"""Plugin authors get ordinary Python within RestrictedPython's rules, and the api checks permissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.runner.api import PluginApi, event_type_for
from sandbox.runner.snippet import run_snippet
from sandbox.runner.supervisor import ApiFailed, ApiRefused

ORDINARY = (Path(__file__).resolve().parent / "ordinary_snippet.py").read_text()


async def test_ordinary_python_runs_untouched():
    report = await run_snippet(ORDINARY)
    assert report["status"] == "ok", report
    assert report["stdout"] == "ok\n"
    assert report["result"] == {
        "count": 2, "d": {"a": 2}, "items": [6, 2], "total": 6, "re": ["12", "34"],
        "findall": ["a", "b", "c", "a", "b", "c"], "date": "2026-01-02", "now": True, "counter": [["a", 2]],
        "chain": [1, 2], "reduce": 6, "f": "002", "gen": 5, "sorted": [3, 1], "mean": 2, "cap": "Hi There",
        "sqrt": 3.0, "unpack": [3, 7], "isinst": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("class A:\n    pass\na = A()\na.x = 1\na.x += 1\n", "syntax"),
        ("x: int = 1\n", "syntax"),
        ("import json\nresult = json.decoder\n", "import"),
        ("result = [].__len__()\n", "dunder"),
        ("def f():\n    yield 1\nresult = getattr(f(), 'gi_frame')\n", "attribute"),
        ("result = api.kv.get('a')\n", "permission"),
    ],
)
async def test_refusals_name_their_kind(source: str, kind: str):
    report = await run_snippet(source)
    assert report["status"] == "blocked"
    assert report["violations"][0]["kind"] == kind, report


async def test_a_caught_refusal_is_still_recorded():
    source = "try:\n    import os\nexcept Exception:\n    pass\nresult = 'carried on'\n"
    report = await run_snippet(source)
    assert report["result"] == "carried on"
    assert report["status"] == "blocked" and report["violations"][0]["kind"] == "import"


async def test_api_arguments_by_position_or_name():
    source = "api.kv.set('k', [1])\napi.kv.set(key='j', value=2)\nresult = [api.kv.get('k'), api.kv.keys()]\n"
    report = await run_snippet(source, permissions=["storage:kv"])
    assert report["result"] == [[1], ["j", "k"]]


class Recorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.published: list[str] = []

    def __call__(self, method: str, permission: str, outcome: str, duration_ms: float) -> None:
        self.calls.append((method, permission, outcome))

    async def events_publish(self, topic: str, payload: dict | None = None, subject_id: str | None = None) -> dict:
        self.published.append(topic)
        return {"topic": topic}

    async def config_get(self) -> dict:
        return {"a": 1}


async def test_publish_permission_follows_the_topic_and_every_call_is_recorded():
    recorded = Recorded()
    api = PluginApi("aging", ["events:publish:tracker/events/aging/+"], recorded, recorded)
    assert await api("events.publish", {"topic": "tracker/events/aging/alert"}) == {
        "topic": "tracker/events/aging/alert"
    }
    with pytest.raises(ApiRefused):
        await api("events.publish", {"topic": "tracker/events/auth/login"})
    with pytest.raises(ApiRefused):
        await api("events.publish", {"topic": "tracker/events/aging/alert/deeper"})
    assert await api("config.get", {}) == {"a": 1}
    with pytest.raises(ApiFailed):
        await api("system.shell", {})
    assert recorded.calls == [
        ("events.publish", "events:publish:tracker/events/aging/alert", "ok"),
        ("events.publish", "events:publish:tracker/events/auth/login", "refused"),
        ("events.publish", "events:publish:tracker/events/aging/alert/deeper", "refused"),
        ("config.get", "config.get", "ok"),
    ]
    assert event_type_for("tracker/events/aging/alert") == "aging.alert"
    with pytest.raises(ApiFailed):
        event_type_for("somewhere/else")
