"""Benchmark of the event pipeline against a real Mosquitto and a real PostgreSQL.

    .venv/bin/python tests/bench/bench_events.py [--events 50000] [--rate 1000] [--seconds 15]

Measures, in one run:

1. the broker's own ceiling: ``mosquitto_pub``/``mosquitto_sub`` and a raw gmqtt loop, QoS 1;
2. pipeline capacity: a committed backlog drained from ``event_outbox`` to ``events_mirror``;
3. sustained end-to-end throughput (outbox commit → mirror row): a producer process keeps committing,
   at 6,000 events/s offered and then flat out, while the kernel relays and mirrors; the rate is
   events over the time from the first event created to the last mirror row. Then again with two
   kernel processes sharing the work (as ``taylordash serve --workers 2`` or two replicas);
4. latency at a steady rate (default 1,000 events/s, from a producer process): from the moment an
   event is created and added to the outbox transaction (``occurred_at``, just before the commit)
   to the moment its mirror row is written (``mirrored_at``).

The kernel runs the events plugin and one no-op handler on ``tracker/events/#``. The broker is a
private Mosquitto with the settings of ``infra/mosquitto`` (unless ``--broker`` names one); the
database is created for the run and dropped afterwards (``--postgres`` names the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from kernel.app import Kernel  # noqa: E402
from kernel.logging import configure_logging  # noqa: E402
from kernel.settings import Settings, load_settings  # noqa: E402
from sdk import Event, EventHandler, hookimpl  # noqa: E402
from tests.support.services import PrivateMosquitto, free_port  # noqa: E402

TUNED_BROKER = "max_inflight_messages 1000\nmax_queued_messages 100000\n"
EVENTS_ONLY = ("builtin_plugins.events",)
PAYLOAD = {"name": "Website relaunch", "status": "active", "owner": "ann", "notes": "x" * 200}


class NoOpHandler:
    """One handler on every event, so the handler path (dispatch, completion) is part of the run."""

    @hookimpl
    def register_event_handlers(self) -> list[EventHandler]:
        async def handle(event: Event) -> None:
            return None

        return [EventHandler("tracker/events/#", handle, "noop")]


# -- the broker's ceiling ---------------------------------------------------------------------------
def mosquitto_cli_ceiling(host: str, port: int, count: int) -> float | None:
    """mosquitto_pub (QoS 1, one connection, messages from stdin) → mosquitto_sub; messages/s."""
    if not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")):
        return None
    topic = f"bench/{uuid.uuid4().hex[:8]}"
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", host, "-p", str(port), "-t", topic, "-q", "1", "-C", str(count)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    lines = ("x" * 300 + "\n") * count
    start = time.perf_counter()
    subprocess.run(
        ["mosquitto_pub", "-h", host, "-p", str(port), "-t", topic, "-q", "1", "-l"],
        input=lines.encode(),
        check=True,
    )
    sub.wait(timeout=120)
    return count / (time.perf_counter() - start)


async def gmqtt_ceiling(url: str, count: int) -> float:
    """A raw QoS 1 loop through the kernel's MQTT transport (flow-controlled gmqtt): publish to a
    shared subscription in the same process; messages/s until the last one arrived."""
    from kernel.bus.transport import TransportOptions, create_transport

    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    done = asyncio.Event()
    received = 0

    async def count_one(topic: str, payload: bytes) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    sub = create_transport(url, TransportOptions(client_id=f"{prefix}-sub", session_expiry_seconds=0))
    pub = create_transport(url, TransportOptions(client_id=f"{prefix}-pub", session_expiry_seconds=0))
    await sub.subscribe(f"$share/bench/{prefix}/#", count_one)
    for transport in (sub, pub):
        await transport.start()
        await transport.wait_connected(5)
    body = b"x" * 300
    start = time.perf_counter()
    acks = [await pub.send(f"{prefix}/t", body) for _ in range(count)]
    await asyncio.gather(*acks)
    await asyncio.wait_for(done.wait(), 120)
    rate = count / (time.perf_counter() - start)
    await pub.stop()
    await sub.stop()
    return rate


# -- producing --------------------------------------------------------------------------------------
async def produce(kernel: Kernel, count: int, batch: int, rate: float | None = None) -> float:
    """Commit ``count`` events, ``batch`` per transaction, at ``rate`` events/s (or flat out);
    returns the achieved rate."""
    start = time.perf_counter()
    for done in range(0, count, batch):
        async with kernel.db.session() as session:
            for n in range(done, min(count, done + batch)):
                event = Event.create(type="projects.updated", source="bench", subject_id=f"p{n % 500}", payload=PAYLOAD)
                await kernel.publish(session, event)
            await session.commit()
        if rate:
            ahead = (done + batch) / rate - (time.perf_counter() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
    return count / (time.perf_counter() - start)


async def producer_main(args: argparse.Namespace) -> None:
    """The producer process: commits events through ``kernel.publish`` without running a bus."""
    kernel = Kernel(bench_settings(args.database, args.broker_url, args.group), builtins=EVENTS_ONLY)
    await kernel.start(serve_bus=False)
    try:
        achieved = await produce(kernel, args.count, args.batch, args.rate or None)
        print(f"{achieved:.0f}", flush=True)
    finally:
        await kernel.stop()


def spawn_producer(args: argparse.Namespace, database: str, count: int, batch: int, rate: float = 0) -> Any:
    command = [sys.executable, __file__, "--produce", "--database", database, "--broker-url", args.broker_url]
    command += ["--group", args.group, "--count", str(count), "--batch", str(batch), "--rate", str(rate)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def instance_main(args: argparse.Namespace) -> None:
    """Another kernel instance (a process of its own, as with ``serve --workers 2``): it consumes
    through the same shared subscription and competes to lead the relay, until SIGTERM."""
    kernel = Kernel(bench_settings(args.database, args.broker_url, args.group), [("noop", NoOpHandler())], EVENTS_ONLY)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await kernel.start()
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        await kernel.stop()


def spawn_instance(args: argparse.Namespace) -> Any:
    command = [sys.executable, __file__, "--instance", "--database", args.database, "--broker-url", args.broker_url]
    instance = subprocess.Popen([*command, "--group", args.group], stdout=subprocess.PIPE, text=True)
    assert instance.stdout is not None and instance.stdout.readline().strip() == "ready"
    return instance


# -- the kernel -------------------------------------------------------------------------------------
def bench_settings(database: str, broker_url: str, group: str) -> Settings:
    return load_settings(
        database_url=database,
        bus_url=broker_url,
        bus_client_id=f"bench-{os.getpid()}",
        bus_share_group=group,
        data_dir=Path(tempfile.gettempdir()) / f"td-bench-{os.getpid()}",
        log_level="warning",
        migrate_on_start=True,
        db_pool_size=20,
    )


async def count_mirrored(kernel: Kernel) -> int:
    async with kernel.db.engine.connect() as conn:
        return int(await conn.scalar(sa.text("SELECT count(*) FROM events_mirror")))


async def wait_mirrored(kernel: Kernel, total: int, patience: float = 600) -> float:
    """Seconds until ``total`` mirror rows exist (polling every 20 ms)."""
    start = time.perf_counter()
    while await count_mirrored(kernel) < total:
        if time.perf_counter() - start > patience:
            raise TimeoutError(f"only {await count_mirrored(kernel)} of {total} events mirrored")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


async def truncate(kernel: Kernel) -> None:
    async with kernel.db.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE events_mirror, event_claims, event_outbox"))


async def latencies(kernel: Kernel) -> list[float]:
    query = sa.text("SELECT extract(epoch FROM mirrored_at - occurred_at) FROM events_mirror")
    async with kernel.db.engine.connect() as conn:
        return [float(row[0]) for row in await conn.execute(query)]


async def mirror_rate(kernel: Kernel) -> tuple[float, float]:
    """Mirror rows per second from the first event created to the last row mirrored, and how far
    the last mirror row trailed the last event created (the backlog when the producer stopped)."""
    query = sa.text("SELECT count(*), min(occurred_at), max(occurred_at), max(mirrored_at) FROM events_mirror")
    async with kernel.db.engine.connect() as conn:
        count, first, last_created, last_mirrored = (await conn.execute(query)).one()
    return count / (last_mirrored - first).total_seconds(), (last_mirrored - last_created).total_seconds()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    results: list[tuple[str, str, str]] = []
    host, port = args.broker_url.removeprefix("mqtt://").split(":")
    cli = mosquitto_cli_ceiling(host, int(port), args.ceiling_messages)
    results.append(
        ("Mosquitto ceiling: mosquitto_pub → mosquitto_sub, QoS 1", f"{cli:,.0f} msg/s" if cli else "n/a", "")
    )
    raw = await gmqtt_ceiling(args.broker_url, args.ceiling_messages)
    results.append(("Mosquitto ceiling: raw gmqtt loop, QoS 1, 1 process", f"{raw:,.0f} msg/s", ""))

    kernel = Kernel(bench_settings(args.database, args.broker_url, args.group), [("noop", NoOpHandler())], EVENTS_ONLY)
    await kernel.start(serve_bus=False)
    try:
        # 2. capacity: drain a committed backlog
        produced = await produce(kernel, args.events, 500)
        await kernel.bus.start()
        drained = await wait_mirrored(kernel, args.events)
        results.append(
            (
                f"Pipeline capacity: drain {args.events:,} committed events",
                f"{args.events / drained:,.0f} events/s",
                "≥ 5,000",
            )
        )
        await kernel.bus.stop()
        await truncate(kernel)

        # 3. sustained: a producer process keeps committing (at a steady rate, then flat out) while
        #    the kernel relays and mirrors; one kernel process, then two (as ``serve --workers 2``)
        kernel = await restart(kernel)
        runs = [
            (1, f"{args.sustained_rate:,.0f} events/s offered", args.sustained_rate, args.sustained_events),
            (1, "producer flat out", 0.0, args.events),
            (2, f"{args.sustained_rate:,.0f} events/s offered", args.sustained_rate, args.sustained_events),
        ]
        for processes, label, offered, total in runs:
            helper = spawn_instance(args) if processes > 1 else None
            producer = spawn_producer(args, args.database, total, 100, offered)
            await wait_mirrored(kernel, total)
            committed = float(producer.communicate(timeout=600)[0].split()[-1])
            if helper is not None:
                helper.send_signal(signal.SIGTERM)
                helper.wait(timeout=60)
            rate, behind = await mirror_rate(kernel)
            kernels = "1 kernel process" if processes == 1 else f"{processes} kernel processes"
            name = f"Sustained end-to-end, {kernels}, {label} ({committed:,.0f}/s committed)"
            results.append((name, f"{rate:,.0f} events/s", "≥ 5,000" if offered else ""))
            results.append(("    mirror behind the producer at its last commit", f"{behind * 1000:,.0f} ms", ""))
            await truncate(kernel)

        # 4. latency at a steady rate
        count = int(args.rate * args.seconds)
        producer = spawn_producer(args, args.database, count, max(1, int(args.rate / 100)), args.rate)
        await wait_mirrored(kernel, count)
        achieved = float(producer.communicate(timeout=600)[0].split()[-1])
        lat = [v * 1000 for v in await latencies(kernel)]
        results.append(
            (
                f"Latency at {achieved:,.0f} events/s for {args.seconds:.0f} s: p50",
                f"{statistics.median(lat):.1f} ms",
                "",
            )
        )
        results.append(("    p95", f"{percentile(lat, 95):.1f} ms", ""))
        results.append(("    p99 (event created → mirror row)", f"{percentile(lat, 99):.1f} ms", "< 250 ms"))
        results.append(("    max", f"{max(lat):.1f} ms", ""))
        results.append(("Producer alone (bus idle), 500 events/commit", f"{produced:,.0f} events/s", ""))
    finally:
        await kernel.stop()
    return results


async def restart(kernel: Kernel) -> Kernel:
    """A fresh kernel on the same settings (bus metrics and workers start clean)."""
    settings = kernel.settings
    await kernel.stop()
    fresh = Kernel(settings, [("noop", NoOpHandler())], EVENTS_ONLY)
    await fresh.start()
    return fresh


def table(rows: list[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'result':>16}  target", "-" * (width + 28)]
    lines += [f"{name:<{width}}  {value:>16}  {target}" for name, value, target in rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    server = args.postgres
    name = f"td_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    args.database = server.rsplit("/", 1)[0] + f"/{name}"
    broker = None
    if not args.broker:
        broker = PrivateMosquitto(TUNED_BROKER, port=free_port()).start()
    args.broker_url = args.broker or broker.url
    args.group = f"bench{os.getpid()}"
    try:
        rows = await run(args)
    finally:
        if broker is not None:
            broker.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    load = os.getloadavg()
    print(f"\nTaylorDash event pipeline — {os.cpu_count()} CPUs, {args.loop}, load average {load[0]:.1f} at the end")
    origin = "private, infra/mosquitto limits" if broker else "given"
    print(f"broker {args.broker_url} ({origin}), PostgreSQL {server.rsplit('@', 1)[-1]}\n")
    print(table(rows))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events of the throughput runs")
    parser.add_argument("--sustained-rate", type=float, default=6000, help="events/s offered in the sustained run")
    parser.add_argument("--sustained-events", type=int, default=60_000, help="events of the sustained run")
    parser.add_argument("--rate", type=float, default=1000, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=15, help="length of the latency run")
    parser.add_argument("--ceiling-messages", type=int, default=50_000, help="messages of the broker ceiling runs")
    parser.add_argument("--broker", help="mqtt://host:port of an existing broker (default: a private one)")
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--instance", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--broker-url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=100, help=argparse.SUPPRESS)
    return parser.parse_args()


def install_loop() -> str:
    """The event loop ``taylordash serve`` runs on: uvloop when installed (uvicorn's "auto")."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    uvloop.install()
    return "uvloop"


if __name__ == "__main__":
    configure_logging("warning", "console")  # logs to stderr: stdout carries results
    arguments = parse()
    arguments.loop = install_loop()
    if arguments.produce:
        asyncio.run(producer_main(arguments))
    elif arguments.instance:
        asyncio.run(instance_main(arguments))
    else:
        asyncio.run(main(arguments))
