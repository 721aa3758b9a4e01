"""``taylordash plugin new NAME``: a sandboxed plugin package that scans clean and whose tests pass."""

from __future__ import annotations

import re
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_-]{1,62}[a-z0-9]$")


class ScaffoldError(ValueError):
    """The name is not a valid plugin name, or the folder exists."""


MANIFEST = """name = "{name}"
version = "0.1.0"
api_version = "1.0"
entry = "{module}"
type = "tool"
description = "{title}: a TaylorDash plugin"
author = "Your Name <you@example.org>"
permissions = ["http:route", "storage:kv"]

[contributions]
config_schema = {{ type = "object", properties = {{ greeting = {{ type = "string", maxLength = 40 }} }} }}

[[contributions.routes]]
path = "/hello"
summary = "Greet the caller and count the greetings"

[[suppressions]]
rule = "B101"
path = "tests/*"
justification = "pytest checks results with assert; the tests never run inside TaylorDash"
"""

CODE = '''"""{title}: runs in the TaylorDash sandbox. See docs/plugins.md for what plugin code may do."""

from sdk import route


@route("/hello", summary="Greet the caller and count the greetings")
def hello(request):
    greeting = api.config.get().get("greeting", "hello")
    count = api.kv.get("greetings", 0) + 1
    api.kv.set("greetings", count)
    return {{"message": f"{{greeting}} from {name}", "greetings": count, "caller": request["principal"]["role"]}}
'''

TEST = '''"""Runs the plugin in a real sandbox worker: same limits, rules and permission checks as in TaylorDash."""

from pathlib import Path

from sdk.testing import SandboxedPlugin

FOLDER = Path(__file__).resolve().parent.parent


def test_hello_counts_greetings():
    with SandboxedPlugin(FOLDER, config={{"greeting": "hi"}}) as plugin:
        first = plugin.get("/hello", role="viewer")
        second = plugin.get("/hello")
    assert first.status == 200
    assert first.body == {{"message": "hi from {name}", "greetings": 1, "caller": "viewer"}}
    assert second.body["greetings"] == 2
    assert plugin.kv == {{"greetings": 2}}
    assert plugin.violations == []


def test_unknown_route():
    with SandboxedPlugin(FOLDER) as plugin:
        assert plugin.get("/nope").status == 404
'''

README = """# {title}

A TaylorDash plugin that runs in the sandbox.

- `{module}/taylordash-plugin.toml` — the manifest: name, permissions, routes
- `{module}/__init__.py` — the code (RestrictedPython rules; `api` is a global)
- `tests/` — tests that run the plugin in a real sandbox worker

```sh
pytest tests                          # run the tests
taylordash scan .                     # what the registry checks at upload
taylordash plugins install {name}.zip # or upload through POST /api/v1/plugins
taylordash plugins enable {name}
curl -H "Authorization: Bearer $TOKEN" http://localhost:8000/api/v1/x/{name}/hello
```

Package the folder as a zip (`cd .. && zip -r {name}.zip {name} -x '*/__pycache__/*'`) or a wheel.
"""


def create(name: str, directory: Path) -> Path:
    """Write the package ``directory/name`` and return its path."""
    if not NAME.match(name):
        raise ScaffoldError(f"{name!r} is not a plugin name: 3-64 characters of a-z, 0-9, - and _, from a letter")
    target = Path(directory) / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists")
    module = name.replace("-", "_")
    title = name.replace("-", " ").replace("_", " ").capitalize()
    values = {"name": name, "module": module, "title": title}
    (target / module).mkdir(parents=True)
    (target / "tests").mkdir()
    (target / module / "taylordash-plugin.toml").write_text(MANIFEST.format(**values))
    (target / module / "__init__.py").write_text(CODE.format(**values))
    (target / "tests" / f"test_{module}.py").write_text(TEST.format(**values))
    (target / "README.md").write_text(README.format(**values))
    return target
