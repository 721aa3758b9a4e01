"""Prometheus metrics of the event pipeline (``taylordash_events_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BusMetrics:
    """Counters and gauges the relay and the processor update."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.published = Counter(
            "taylordash_events_published", "Outbox events the broker acknowledged", registry=registry
        )
        self.redelivered = Counter(
            "taylordash_events_redelivered",
            "Published events queued again because no consumer stored them while newer ones arrived",
            registry=registry,
        )
        self.delivered = Counter(
            "taylordash_events_delivered", "Messages the processor received from the broker", registry=registry
        )
        self.handled = Counter(
            "taylordash_events_handled", "Handler runs by outcome", ["handler", "outcome"], registry=registry
        )
        self.retried = Counter(
            "taylordash_events_retried", "Handler attempts after a failure", ["handler"], registry=registry
        )
        self.dead_lettered = Counter(
            "taylordash_events_dead_lettered", "Messages and handler runs dead-lettered", ["reason"], registry=registry
        )
        self.outbox_pending = Gauge(
            "taylordash_events_outbox_pending", "Outbox events not yet published", registry=registry
        )
        self.outbox_lag = Gauge(
            "taylordash_events_outbox_lag_seconds",
            "Age of the oldest outbox event not yet published (0 when none waits)",
            registry=registry,
        )
        self.connected = Gauge(
            "taylordash_events_transport_connected", "1 while the bus transport is connected", registry=registry
        )
