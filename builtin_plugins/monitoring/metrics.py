"""Prometheus metrics the monitoring plugin owns, the HTTP middleware feeding them, and the
``/metrics`` exposition (aggregated across workers in prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kernel import __version__

if TYPE_CHECKING:
    from kernel.db import Database

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def multiprocess_dir() -> str | None:
    """The folder prometheus-client shares values through when ``serve --workers N`` set it up."""
    return os.environ.get(MULTIPROC_ENV) or None


class MonitoringMetrics:
    """Every metric of this plugin, created on the kernel's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def gauge(name: str, doc: str, labels: Iterable[str] = (), mode: str = "livesum") -> Gauge:
            return Gauge(name, doc, list(labels), registry=registry, multiprocess_mode=mode)

        self.build_info = gauge("taylordash_build_info", "Version of the running kernel", ["version"], "livemax")
        self.build_info.labels(__version__).set(1)
        self.http_requests = Counter(
            "taylordash_http_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_latency = Histogram(
            "taylordash_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["method", "route"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.http_in_progress = gauge("taylordash_http_requests_in_progress", "HTTP requests being served")
        self.pool_size = gauge("taylordash_db_pool_size", "Connections the database pool keeps")
        self.pool_checked_out = gauge("taylordash_db_pool_checked_out", "Database connections in use")
        self.pool_checked_in = gauge("taylordash_db_pool_checked_in", "Idle database connections in the pool")
        self.pool_overflow = gauge("taylordash_db_pool_overflow", "Connections open beyond the pool size")
        self.rss = gauge("taylordash_process_resident_memory_bytes", "Resident memory of the kernel processes")
        self.vms = gauge("taylordash_process_virtual_memory_bytes", "Virtual memory of the kernel processes")
        self.cpu = Counter("taylordash_process_cpu_seconds", "CPU time of the kernel processes", registry=registry)
        self.fds = gauge("taylordash_process_open_fds", "Open file descriptors of the kernel processes")
        self.threads = gauge("taylordash_process_threads", "Threads of the kernel processes")
        self.started = gauge(
            "taylordash_process_start_time_seconds", "Start time (Unix) of the oldest worker", (), "min"
        )
        self.system_cpu = gauge("taylordash_system_cpu_percent", "Host CPU use in percent", (), "mostrecent")
        self.system_memory = gauge(
            "taylordash_system_memory_used_percent", "Host memory use in percent", (), "mostrecent"
        )
        self.system_disk = gauge(
            "taylordash_system_disk_used_percent", "Use of the disk holding the data dir, in percent", (), "mostrecent"
        )
        self.system_load = gauge("taylordash_system_load1", "Host load average over one minute", (), "mostrecent")
        self.logs_written = Counter(
            "taylordash_logs_written", "Log lines written to application_logs", registry=registry
        )
        self.logs_dropped = Counter(
            "taylordash_logs_dropped", "Log lines dropped because the writer queue was full", registry=registry
        )
        self.log_write_errors = Counter(
            "taylordash_logs_write_errors", "Log batches the database refused", registry=registry
        )
        self.log_queue = gauge("taylordash_logs_queue_depth", "Log lines waiting for the database writer")
        self.log_flush = Histogram(
            "taylordash_logs_flush_duration_seconds",
            "Time to write one batch of log lines",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.retention_deleted = Counter(
            "taylordash_retention_deleted_rows", "Rows deleted by retention cleanup", ["table"], registry=registry
        )
        self.retention_runs = Counter(
            "taylordash_retention_runs",
            "Retention cleanups by table and outcome",
            ["table", "outcome"],
            registry=registry,
        )
        self.retention_last_run = gauge(
            "taylordash_retention_last_run_timestamp_seconds", "When cleanup last ran per table", ["table"], "max"
        )
        self.samples_stored = Counter(
            "taylordash_system_samples_stored", "System metric samples written to system_metrics", registry=registry
        )
        self._process = psutil.Process()
        self._cpu_seen = 0.0
        self.started.set(self._process.create_time())

    def refresh(self, db: Database) -> None:
        """Update the process and pool gauges (cheap: a few /proc reads)."""
        with self._process.oneshot():
            memory = self._process.memory_info()
            times = self._process.cpu_times()
            self.rss.set(memory.rss)
            self.vms.set(memory.vms)
            self.threads.set(self._process.num_threads())
            if hasattr(self._process, "num_fds"):
                self.fds.set(self._process.num_fds())
        cpu = times.user + times.system
        if cpu > self._cpu_seen:
            self.cpu.inc(cpu - self._cpu_seen)
            self._cpu_seen = cpu
        pool: Any = db.engine.pool
        for gauge, attribute in (
            (self.pool_size, "size"),
            (self.pool_checked_out, "checkedout"),
            (self.pool_checked_in, "checkedin"),
            (self.pool_overflow, "overflow"),
        ):
            reader = getattr(pool, attribute, None)
            if reader is not None:
                gauge.set(max(0, reader()))


class HttpMetricsMiddleware:
    """Counts every HTTP request by the route template that served it (never the raw path: ids
    would explode cardinality), its method and status, and observes its latency."""

    def __init__(self, app: ASGIApp, metrics: MonitoringMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = self.metrics.http_in_progress
        in_progress.inc()
        try:
            await self.app(scope, receive, capture)
        finally:
            in_progress.dec()
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        key = (method, template, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self.metrics.http_requests.labels(method, template, str(status))
        counter.inc()
        latency = self._latencies.get(key[:2])
        if latency is None:
            latency = self._latencies[key[:2]] = self.metrics.http_latency.labels(method, template)
        latency.observe(seconds)


class _LocalCollectors(Collector):
    """The registry's custom collectors (not plain metrics, which multiprocess mode aggregates)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        for collector in list(self.registry._collector_to_names):
            if not isinstance(collector, MetricWrapperBase):
                yield from collector.collect()


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``; in multiprocess mode the values of every worker."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=path)
    merged.register(_LocalCollectors(registry))
    return generate_latest(merged)


def mark_process_dead() -> None:
    """Drop this worker's live gauges from the shared folder (multiprocess mode only)."""
    path = multiprocess_dir()
    if path is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), path)
