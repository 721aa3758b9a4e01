"""System sampling: host and process figures stored in ``system_metrics`` every N seconds."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import psutil
import structlog
from sqlalchemy import insert
from uuid_utils.compat import uuid7

from builtin_plugins.monitoring.metrics import MonitoringMetrics
from builtin_plugins.monitoring.models import SystemMetric
from kernel.db import Database

log = structlog.get_logger("taylordash.monitoring.sampler")


def read_system(data_dir: Path) -> dict[str, float]:
    """One reading of host and process figures (blocking: a handful of /proc reads)."""
    process = psutil.Process()
    memory = psutil.virtual_memory()
    values = {
        "system.cpu_percent": psutil.cpu_percent(interval=None),
        "system.memory_used_percent": memory.percent,
        "system.memory_available_bytes": float(memory.available),
        "system.load1": os.getloadavg()[0],
        "process.resident_memory_bytes": float(process.memory_info().rss),
        "process.cpu_percent": process.cpu_percent(interval=None),
        "process.threads": float(process.num_threads()),
    }
    try:
        values["system.disk_used_percent"] = psutil.disk_usage(str(data_dir)).percent
    except OSError:
        pass
    return values


class SystemSampler:
    """Reads the figures, updates the host gauges, and stores one row per figure."""

    def __init__(self, db: Database, metrics: MonitoringMetrics, instance: str, data_dir: Path) -> None:
        self.db = db
        self.metrics = metrics
        self.instance = instance
        self.data_dir = data_dir

    async def sample(self, now: datetime | None = None) -> dict[str, float]:
        """Take and store one sample; returns the figures."""
        values = await asyncio.to_thread(read_system, self.data_dir)
        self.metrics.system_cpu.set(values["system.cpu_percent"])
        self.metrics.system_memory.set(values["system.memory_used_percent"])
        self.metrics.system_load.set(values["system.load1"])
        if "system.disk_used_percent" in values:
            self.metrics.system_disk.set(values["system.disk_used_percent"])
        recorded = now or datetime.now(UTC)
        rows = [
            {"id": uuid7(), "recorded_at": recorded, "instance": self.instance, "name": name, "value": float(value)}
            for name, value in values.items()
        ]
        async with self.db.engine.begin() as conn:
            await conn.execute(insert(SystemMetric.__table__), rows)  # type: ignore[attr-defined]
        self.metrics.samples_stored.inc(len(rows))
        return values
