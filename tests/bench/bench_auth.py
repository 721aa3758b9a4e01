"""Authenticated ``GET /api/v1/auth/me``: the real app vs the same app with auth taken out.

Both servers are this script's ``serve`` mode under uvicorn (one worker, uvloop + httptools), on one
freshly migrated database (SQLite by default; ``--database-url`` for PostgreSQL):

- ``auth``: the app exactly as shipped; requests carry a session access JWT.
- ``noauth``: the same kernel, plugins, route and endpoint, with the auth plugin's middleware (audit,
  security headers) removed and authentication replaced by a constant principal.

The load generator is wrk (``apt-get install wrk``; 1 thread, ``--connections`` keep-alive
connections) in a second process; without wrk a small asyncio HTTP/1.1 client is used instead (say
``--loader python`` to force it). Runs alternate between the variants; medians are reported with the
ratio auth/noauth (target ≥ 0.80), and the CPU time each server spent per request (read from /proc),
which other load on the machine disturbs less than throughput does.

    .venv/bin/python tests/bench/bench_auth.py [--runs 3] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sdk import hookimpl  # noqa: E402

PATH = "/api/v1/auth/me"
USERNAME, PASSWORD = "bench-admin", "benchmark passphrase 1"
SECRET = "bench-secret-0123456789abcdef0123456789"


# -- the servers ------------------------------------------------------------------------------------
class ConstantPrincipal:
    """Authentication replaced by a fixed principal (asked before any other plugin)."""

    def __init__(self, principal: Any) -> None:
        self.principal = principal

    @hookimpl(tryfirst=True)
    def authenticate(self, request: Any) -> Any:
        return self.principal


def build_app(variant: str) -> Any:
    from builtin_plugins.auth.middleware import AuditMiddleware, SecurityHeadersMiddleware
    from kernel.app import create_app
    from kernel.settings import load_settings
    from sdk import Principal

    settings = load_settings()
    if variant == "auth":
        return create_app(settings)
    principal = Principal(id=os.environ["BENCH_USER_ID"], role="admin", name=USERNAME, kind="user", session_id="x")
    app = create_app(settings, [("constant_principal", ConstantPrincipal(principal))])
    kernel = app.kernel
    build = kernel.build_asgi

    def without_auth_middleware() -> Any:
        kernel.middleware = [m for m in kernel.middleware if m.cls not in (AuditMiddleware, SecurityHeadersMiddleware)]
        return build()

    kernel.build_asgi = without_auth_middleware  # type: ignore[method-assign]
    return app


def serve(variant: str, port: int) -> None:
    import uvicorn

    config = uvicorn.Config(build_app(variant), host="127.0.0.1", port=port, log_config=None, access_log=False)
    uvicorn.Server(config).run()


# -- set-up -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def product_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TD_")}
    env.update(TD_DATA_DIR=str(data_dir), TD_SECRET_KEY=SECRET, TD_LOG_LEVEL="warning", TD_MIGRATE_ON_START="true")
    if database_url:
        env["TD_DATABASE_URL"] = database_url
    return env


def create_admin(env: dict[str, str]) -> str:
    """Migrate and create the benchmark user with the auth plugin's CLI; its id."""
    cli = str(Path(sys.executable).parent / "taylordash")
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [cli, "users", "create", USERNAME, "--role", "admin", "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return re.search(r"\(([0-9a-f-]{36})\)", created.stdout).group(1)  # type: ignore[union-attr]


@contextmanager
def server(variant: str, env: dict[str, str], log: Path) -> Any:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "serve", "--variant", variant, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"{variant} server exited:\n{log.read_text()}")
            try:
                if httpx.get(base + "/health/live", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{variant} server not ready:\n{log.read_text()}")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- load ---------------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(base: str, token: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    """``(requests/s, p50 ms, p99 ms, requests)`` measured by wrk."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            base + PATH,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def percentile(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return rps, percentile("50"), percentile("99"), requests


async def _python_load(host: str, port: int, token: str, duration: float, connections: int) -> list[float]:
    request = (f"GET {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise SystemExit(f"unexpected answer: {head[:80]!r}")
                length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - start) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return latencies


def python_loader(base: str, token: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    """``(requests/s, p50 ms, p99 ms, requests)`` from the asyncio client (in this process)."""
    host, port = base.removeprefix("http://").split(":")
    latencies = sorted(asyncio.run(_python_load(host, int(port), token, duration, connections)))
    count = len(latencies)
    return count / duration, latencies[count // 2], latencies[int(count * 0.99)], count


# -- main -------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    serve_parser = sub.add_parser("serve", help="(internal) run one variant")
    serve_parser.add_argument("--variant", choices=("auth", "noauth"), required=True)
    serve_parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--runs", type=int, default=3, help="Runs per variant (alternating)")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2, help="Seconds of unmeasured load per server")
    parser.add_argument("--database-url", help="postgresql+asyncpg://… (default: a fresh SQLite file)")
    parser.add_argument("--loader", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.variant, args.port)
        return

    use_wrk = args.loader == "wrk" or (args.loader == "auto" and shutil.which("wrk") is not None)
    load = wrk if use_wrk else python_loader
    loader_name = f"wrk (1 thread, {args.connections} connections)" if use_wrk else "asyncio client"
    with tempfile.TemporaryDirectory(prefix="td-bench-auth-") as tmp, ExitStack() as stack:
        env = product_env(Path(tmp) / "data", args.database_url)
        env["BENCH_USER_ID"] = create_admin(env)
        servers = {
            variant: stack.enter_context(server(variant, env, Path(tmp) / f"{variant}.log"))
            for variant in ("auth", "noauth")
        }
        login = httpx.post(servers["auth"][0] + "/api/v1/auth/login", json={"username": USERNAME, "password": PASSWORD})
        token = login.json()["access_token"]
        for variant, (base, _) in servers.items():
            me = httpx.get(base + PATH, headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["username"] == USERNAME, (variant, me.text)
            load(base, token, args.warmup, args.connections)
        results: dict[str, list[tuple[float, ...]]] = {"auth": [], "noauth": []}
        for run in range(args.runs):
            for variant in ("noauth", "auth") if run % 2 else ("auth", "noauth"):
                base, pid = servers[variant]
                cpu_before = cpu_seconds(pid)
                rps, p50, p99, requests = load(base, token, args.duration, args.connections)
                cpu_us = (cpu_seconds(pid) - cpu_before) / requests * 1e6
                results[variant].append((rps, p50, p99, cpu_us))
                print(
                    f"  run {run + 1} {variant:<7} {rps:9.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                    f"server CPU {cpu_us:6.1f} us/req"
                )

    medians = {v: [statistics.median(r[i] for r in rs) for i in range(4)] for v, rs in results.items()}
    ratio = medians["auth"][0] / medians["noauth"][0]
    cpu_ratio = medians["noauth"][3] / medians["auth"][3]
    print()
    print(f"GET {PATH}, {args.runs} x {args.duration} s per variant (medians), load: {loader_name}")
    print("servers: uvicorn, 1 worker each; server CPU = CPU time the server process used per request")
    print(f"{'variant':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for variant, label in (("auth", "with auth (JWT session)"), ("noauth", "auth removed")):
        rps, p50, p99, cpu_us = medians[variant]
        print(f"{label:<26} {rps:8.0f} {p50:8.2f} {p99:8.2f} {cpu_us:11.1f}")
    print(f"throughput ratio auth / removed: {ratio:.2f} (target >= 0.80) -> {'PASS' if ratio >= 0.80 else 'FAIL'}")
    print(f"CPU-cost ratio (removed / auth, capacity): {cpu_ratio:.2f}")


if __name__ == "__main__":
    main()
