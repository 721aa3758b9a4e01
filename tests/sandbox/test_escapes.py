"""The escape corpus: every attempt in tests/sandbox/escapes is blocked or contained, with a violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.runner.kinds import BLOCKED_KINDS, LIMIT_KINDS
from sandbox.runner.snippet import run_snippet

ESCAPES = Path(__file__).resolve().parent / "escapes"
CORPUS = sorted(ESCAPES.glob("*.py"))


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(("name", "source"), [(p.name, p.read_text()) for p in CORPUS], ids=[p.stem for p in CORPUS])
async def test_escape_is_refused(name: str, source: str):
    report = await run_snippet(source, filename=name, timeout=4.0)
    assert report["status"] in ("blocked", "contained"), report
    assert report["violations"], report
    kinds = {v["kind"] for v in report["violations"]}
    assert kinds <= BLOCKED_KINDS | LIMIT_KINDS
    assert report["status"] == ("blocked" if kinds & BLOCKED_KINDS else "contained")
    assert report["result"] is None  # nothing the attempt computed leaks out


async def test_an_ordinary_snippet_is_untouched():
    source = "import math, json\nresult = {'root': math.sqrt(16), 'doc': json.loads('[1, 2]')}\nprint('done')"
    report = await run_snippet(source)
    assert report == {**report, "status": "ok", "result": {"root": 4.0, "doc": [1, 2]}, "violations": []}
    assert report["stdout"] == "done\n"
