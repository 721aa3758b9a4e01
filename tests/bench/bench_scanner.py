"""Benchmark: `taylordash scan` against plain `bandit -r` on the same generated 20,000-line plugin.

    .venv/bin/python tests/bench/bench_scanner.py [--lines 20000] [--runs 5]

Both commands run as subprocesses in the same run, alternating, over the same files; the median
wall time of each is reported with the ratio (target: at most 1.5). Installed bandit plugins are
loaded by both, as a user's `bandit -r` would.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MANIFEST = """name = "benchmark"
version = "1.0.0"
api_version = "1.0"
entry = "benchmark"
type = "tool"
description = "Generated code for the scanner benchmark"
author = "bench"
permissions = ["projects:read", "tasks:read", "storage:kv"]
"""

MODULE_TEMPLATE = '''"""Generated module {index}."""

import json
import hashlib
import random
import re
from dataclasses import dataclass, field


@dataclass
class Record{index}:
    name: str
    size: int = 0
    tags: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"{{self.name}} ({{self.size}})"

    def key(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()
'''

FUNCTION_TEMPLATE = '''

def transform_{index}_{n}(items, factor={n}):
    """Scale, filter and summarise items."""
    result = []
    for position, item in enumerate(items):
        if item is None:
            continue
        value = item * factor if isinstance(item, int) else len(str(item))
        if value % 3 == 0:
            result.append({{"position": position, "value": value}})
        elif re.match(r"^[a-z]+$", str(item)):
            result.append({{"position": position, "value": -value}})
    total = sum(entry["value"] for entry in result)
    sample = random.choice(result) if result else None
    assert total >= -10**9, "total out of range"
    return json.dumps({{"total": total, "count": len(result), "sample": sample}})
'''


def generate(root: Path, lines: int) -> int:
    """Write a plugin of about ``lines`` lines under ``root``; returns the exact count."""
    package = root / "benchmark"
    package.mkdir(parents=True)
    (package / "taylordash-plugin.toml").write_text(MANIFEST)
    (package / "__init__.py").write_text('"""Benchmark plugin."""\n')
    written = 1
    index = 0
    while written < lines:
        body = MODULE_TEMPLATE.format(index=index)
        n = 0
        while body.count("\n") < 400 and written + body.count("\n") < lines:
            body += FUNCTION_TEMPLATE.format(index=index, n=n)
            n += 1
        (package / f"module_{index:03d}.py").write_text(body)
        written += body.count("\n")
        index += 1
    return written


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed ({completed.returncode}): {completed.stderr.decode()[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    try:
        lines = generate(tmp / "plugin", args.lines)
        target = str(tmp / "plugin")
        ours = [str(BIN / "taylordash"), "scan", target, "--format", "json", "--output", str(tmp / "ours.json")]
        bandit = [str(BIN / "bandit"), "-q", "-r", target, "-f", "json", "-o", str(tmp / "bandit.json")]
        timed(ours)  # warm the page cache and .pyc files for both
        timed(bandit)
        ours_times, bandit_times = [], []
        for _ in range(args.runs):
            bandit_times.append(timed(bandit))
            ours_times.append(timed(ours))
        ours_median, bandit_median = statistics.median(ours_times), statistics.median(bandit_times)
        print(f"plugin: {lines} lines in {len(list((tmp / 'plugin' / 'benchmark').glob('*.py')))} files")
        print(f"bandit -r         median {bandit_median:.3f}s  runs {[round(t, 3) for t in bandit_times]}")
        print(f"taylordash scan   median {ours_median:.3f}s  runs {[round(t, 3) for t in ours_times]}")
        ratio = ours_median / bandit_median
        print(f"ratio {ratio:.2f} (target <= 1.5): {'OK' if ratio <= 1.5 else 'TOO SLOW'}")
        if ratio > 1.5:
            sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
