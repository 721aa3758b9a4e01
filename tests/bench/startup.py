"""Start-up to ready: `taylordash serve` on the embedded default until /health/ready answers 200.

Measures a cold start (fresh data dir: the SQLite database is created and migrated) and a warm start
(schema already at head), several runs each, and prints median and worst. Baseline in the same run:
the bare interpreter start-up plus importing the kernel (the floor any start pays).

    .venv/bin/python tests/bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
TARGET_SECONDS = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
    env.update(TD_DATA_DIR=str(data_dir), TD_LOG_LEVEL="warning")
    return env


def time_to_ready(data_dir: Path) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(BIN / "taylordash"), "serve", "--port", str(port)],
        env=env_for(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=0.5) as client:
            while True:
                try:
                    if client.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200:
                        return time.perf_counter() - start
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}")
                time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def time_import_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import kernel.app"], check=True)
    return time.perf_counter() - start


def summary(name: str, samples: list[float]) -> str:
    return f"| {name:<34} | {statistics.median(samples):6.3f} s | {max(samples):6.3f} s | {len(samples):>4} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    floor = [time_import_floor() for _ in range(args.runs)]
    cold, warm = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            cold.append(time_to_ready(data_dir))
            warm.append(time_to_ready(data_dir))
    print("| start-up (embedded default, all builtin plugins) | median | worst | runs |")
    print("|---|---|---|---|")
    print(summary("python + import kernel.app (floor)", floor))
    print(summary("cold: create + migrate, to ready", cold))
    print(summary("warm: schema at head, to ready", warm))
    verdict = "PASS" if max(statistics.median(cold), statistics.median(warm)) < TARGET_SECONDS else "FAIL"
    print(f"target < {TARGET_SECONDS} s: {verdict}")


if __name__ == "__main__":
    main()
