"""The monitoring plugin at run time: metrics, the database log writer, the sampler, the
retention job, and the scrape-token check, wired to one kernel."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import Request

from builtin_plugins.monitoring.config import MonitoringSettings
from builtin_plugins.monitoring.logs import LogReader
from builtin_plugins.monitoring.logsink import DatabaseLogHandler, LogWriter
from builtin_plugins.monitoring.metrics import MonitoringMetrics, exposition, mark_process_dead
from builtin_plugins.monitoring.retention import RetentionService
from builtin_plugins.monitoring.sampler import SystemSampler
from kernel.db import cancel_between_transactions
from sdk import Principal

if TYPE_CHECKING:
    from kernel.app import Kernel

log = structlog.get_logger("taylordash.monitoring")
METRICS_PATH = "/metrics"
SCRAPER = Principal(id="metrics-scraper", role="admin", name="Prometheus scrape token", kind="scraper")


class MonitoringService:
    """Everything the monitoring plugin runs for one kernel (``kernel.services["monitoring"]``)."""

    def __init__(self, kernel: Kernel, settings: MonitoringSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.instance = settings.instance_name or f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = MonitoringMetrics(kernel.metrics)
        self.reader = LogReader(kernel.db)
        self.retention = RetentionService(kernel.db, self.metrics, settings.retention_batch_size)
        self.sampler = SystemSampler(kernel.db, self.metrics, self.instance, kernel.settings.data_dir)
        self.writer: LogWriter | None = None
        self.handler: DatabaseLogHandler | None = None
        self._token = settings.scrape_token.get_secret_value().encode() if settings.scrape_token else None
        self._tasks: list[tuple[asyncio.Task[None], asyncio.Lock]] = []

    async def start(self) -> None:
        """Start the log writer and the periodic jobs."""
        settings = self.settings
        await self.retention.ensure_defaults()
        if settings.db_logging:
            self.writer = LogWriter(
                self.kernel.db,
                self.metrics,
                self.instance,
                queue_size=settings.log_queue_size,
                batch_size=settings.log_batch_size,
                flush_seconds=settings.log_flush_seconds,
            )
            self.writer.start()
            self.handler = DatabaseLogHandler(self.writer, logging.getLevelName(settings.db_log_level.upper()))
            logging.getLogger().addHandler(self.handler)
        self.refresh_gauges()
        self._every("gauges", settings.gauge_refresh_seconds, self._refresh_async)
        if settings.sampler_interval_seconds > 0:
            self._every("sampler", settings.sampler_interval_seconds, self.sampler.sample)
        if settings.retention_interval_seconds > 0:
            self._every("retention", settings.retention_interval_seconds, self.retention.run)

    async def stop(self) -> None:
        """Stop the jobs, write the queued log lines, detach from logging."""
        for task, running in self._tasks:
            await cancel_between_transactions(running, [task])
        self._tasks.clear()
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler = None
        if self.writer is not None:
            await self.writer.stop()
        mark_process_dead()

    def _every(self, name: str, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        running = asyncio.Lock()  # held while the job runs, so a stop never cuts its transaction

        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                async with running:
                    try:
                        await job()
                    except Exception:
                        log.exception("monitoring.job_failed", job=name)

        self._tasks.append((asyncio.create_task(loop(), name=f"taylordash-monitoring-{name}"), running))

    def refresh_gauges(self) -> None:
        """Bring the process, pool and log-queue gauges up to date."""
        self.metrics.refresh(self.kernel.db)
        if self.writer is not None:
            self.metrics.log_queue.set(len(self.writer.queue))

    async def _refresh_async(self) -> None:
        await asyncio.to_thread(self.refresh_gauges)

    async def scrape(self) -> bytes:
        """The ``/metrics`` body: every metric of the kernel's registry (all workers in multiprocess mode)."""
        await asyncio.to_thread(self.refresh_gauges)
        return await asyncio.to_thread(exposition, self.kernel.metrics)

    def authenticate(self, request: Request) -> Principal | None:
        """The scraper principal for ``GET /metrics`` with the configured scrape token, else ``None``.
        The token is good for that path only."""
        if self._token is None or request.url.path != METRICS_PATH:
            return None
        header = request.headers.get("authorization", "")
        if header[:7].lower() != "bearer ":
            return None
        if hmac.compare_digest(header[7:].strip().encode(), self._token):
            return SCRAPER
        return None
