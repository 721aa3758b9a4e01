"""Wiring the plugin into a running kernel: the service, its event store, the metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from builtin_plugins.events.config import EventsSettings
from builtin_plugins.events.service import EventsService


def start(kernel: Any) -> None:
    """Register the service (``kernel.services["events"]``) and make its store the bus's."""
    settings: EventsSettings = kernel.plugin_config("events") or EventsSettings()
    service = EventsService(kernel, settings.live_poll_seconds)
    kernel.services["events"] = service
    kernel.bus.use_store(service.store)


async def stop(kernel: Any) -> None:
    """Stop the live feed, ending open streams."""
    service = kernel.services.get("events")
    if service is not None:
        await service.live.stop()


def register_metrics(kernel: Any, registry: Any) -> None:
    """Create the store's counters on the kernel's registry."""
    service: EventsService = kernel.services["events"]
    service.store.bind_metrics(
        Counter("taylordash_events_mirrored", "Events written to the mirror", registry=registry),
        Counter("taylordash_events_duplicates", "Deliveries of events already mirrored", registry=registry),
    )
