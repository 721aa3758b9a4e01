"""The kernel's event bus: outbox, relay, processor and broadcasts over one transport."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from sqlmodel.ext.asyncio.session import AsyncSession

from kernel.bus.envelope import Event
from kernel.bus.metrics import BusMetrics
from kernel.bus.outbox import Outbox, Relay, RelayOptions
from kernel.bus.processor import Processor, ProcessorOptions
from kernel.bus.store import EventStore
from kernel.bus.topics import BROADCAST_ROOT, EVENTS_ROOT, TopicError, check_filter, check_topic, matches
from kernel.bus.transport import TransportError, TransportOptions, TransportUnavailable, create_transport
from kernel.contributions import EventHandler
from kernel.db import Database
from kernel.settings import Settings

log = structlog.get_logger("taylordash.bus")
BroadcastHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
CONNECT_WAIT_SECONDS = 3.0
DRAIN_SECONDS = 5.0
FLUSH_SECONDS = 3.0


def default_client_id(settings: Settings) -> str:
    """``TD_BUS_CLIENT_ID``, else ``taylordash-<host>-<port>`` (plus the pid with several workers)."""
    if settings.bus_client_id:
        return settings.bus_client_id
    client_id = f"taylordash-{socket.gethostname()}-{settings.port}"
    return f"{client_id}-{os.getpid()}" if settings.workers > 1 else client_id


class Bus:
    """Durable events (``publish`` into the outbox → relay → broker → processor) and non-durable
    broadcasts to every running instance (``broadcast`` / ``on_broadcast``)."""

    def __init__(self, settings: Settings, db: Database, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.client_id = default_client_id(settings)
        self.metrics = BusMetrics(registry)
        self.transport = create_transport(
            settings.bus_url,
            TransportOptions(
                client_id=self.client_id,
                keepalive_seconds=settings.bus_keepalive_seconds,
                session_expiry_seconds=settings.bus_session_expiry_seconds,
                inflight_max=settings.bus_inflight_max,
                reconnect_max_seconds=settings.bus_reconnect_max_seconds,
                tls_ca_file=settings.bus_tls_ca_file,
                tls_cert_file=settings.bus_tls_cert_file,
                tls_key_file=settings.bus_tls_key_file,
            ),
        )
        self.metrics.connected.set_function(lambda: float(self.transport.connected))
        self.outbox = Outbox(db, settings.bus_max_payload_bytes, wake_relay=self._wake_relay)
        self.relay = Relay(
            db,
            self.transport,
            self.metrics,
            RelayOptions(
                batch_size=settings.bus_relay_batch_size,
                max_undelivered=settings.bus_relay_max_undelivered,
                poll_seconds=settings.bus_relay_poll_seconds,
                backoff_max_seconds=settings.bus_reconnect_max_seconds,
                redeliver_after_seconds=settings.bus_redeliver_after_seconds,
            ),
        )
        self.processor = Processor(
            db,
            self.outbox,
            self.metrics,
            ProcessorOptions(
                attempts=settings.bus_handler_attempts,
                backoff_seconds=settings.bus_handler_backoff_seconds,
                backoff_max_seconds=settings.bus_handler_backoff_max_seconds,
                timeout_seconds=settings.bus_handler_timeout_seconds,
                max_payload_bytes=settings.bus_max_payload_bytes,
            ),
            owner=self.client_id,
        )
        self.events_subscription = f"$share/{settings.bus_share_group}/{EVENTS_ROOT}/#"
        self._broadcast_handlers: list[tuple[str, BroadcastHandler]] = []
        self._transport_started = False
        self._consuming = False
        self._closed = False
        self.running = False
        """True from ``start`` to ``close``: the transport is up, broadcasts go out."""

    # -- durable events ---------------------------------------------------------------------------
    def use_store(self, store: EventStore) -> None:
        """Keep consumed events in ``store`` (the events plugin calls this at start-up)."""
        self.processor.store = store

    async def publish(self, session: AsyncSession, event: Event) -> None:
        """Add ``event`` to the outbox inside ``session``'s transaction (the caller commits)."""
        await self.outbox.append(session, event)

    def _wake_relay(self) -> None:
        if self._consuming:
            self.relay.wake()

    # -- broadcasts -------------------------------------------------------------------------------
    def on_broadcast(self, pattern: str, handler: BroadcastHandler) -> None:
        """Call ``handler(topic, payload)`` for every broadcast matching ``pattern`` (an MQTT filter
        under ``tracker/broadcast/``), sent by any instance including this one. May be called before
        or after the bus starts."""
        check_filter(pattern)
        if not pattern.startswith(BROADCAST_ROOT + "/"):
            raise TopicError(f"broadcast patterns live under {BROADCAST_ROOT}/, got {pattern!r}")
        self._broadcast_handlers.append((pattern, handler))

    async def broadcast(self, topic: str, payload: dict[str, Any], wait_seconds: float = CONNECT_WAIT_SECONDS) -> None:
        """Send ``payload`` to every running instance (this one included), without persistence: an
        instance that is down misses it. Returns once the broker accepted it; raises
        :class:`TransportUnavailable` if the broker cannot be reached within ``wait_seconds``."""
        check_topic(topic)
        if not topic.startswith(BROADCAST_ROOT + "/"):
            raise TopicError(f"broadcast topics live under {BROADCAST_ROOT}/, got {topic!r}")
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
        await self._start_transport()
        if not await self.transport.wait_connected(wait_seconds):
            raise TransportUnavailable(f"the bus is not connected; broadcast on {topic} not sent")
        await self.transport.publish(topic, body)

    async def _on_broadcast(self, topic: str, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            log.warning("bus.broadcast_malformed", topic=topic)
            return
        for pattern, handler in list(self._broadcast_handlers):
            if matches(pattern, topic):
                try:
                    await handler(topic, payload)
                except Exception:
                    log.exception("bus.broadcast_handler_failed", topic=topic)

    # -- lifecycle --------------------------------------------------------------------------------
    async def _start_transport(self) -> None:
        if self._closed:
            raise TransportUnavailable("the bus is closed")
        if not self._transport_started:
            self._transport_started = True
            await self.transport.start()

    def bind(self, handlers: Sequence[tuple[str, EventHandler]], fail: Callable[[str, str], None]) -> None:
        """Use the event handlers plugins registered (``fail(plugin, message)`` disables a plugin
        whose handler names an invalid topic filter)."""
        self.processor.bind(handlers, fail)

    async def start(self) -> None:
        """Subscribe, connect, and run the relay and the processor."""
        await self.transport.subscribe(f"{BROADCAST_ROOT}/#", self._on_broadcast)
        await self.transport.subscribe(self.events_subscription, self.processor.receive)
        await self._start_transport()
        if not await self.transport.wait_connected(CONNECT_WAIT_SECONDS):
            log.warning(
                "bus.not_connected_yet", url=self.settings.public_dict()["bus_url"], hint="events wait in the outbox"
            )
        await self.processor.start()
        await self.relay.start()
        self._consuming = self.running = True

    async def quiesce(self) -> None:
        """Stop relaying and consuming: leave the shared group so the broker sends the next events
        to the other instances, and store what already arrived (a few seconds at most). Broadcasts
        still go out until ``close``. Anything left unacknowledged is delivered again to this
        client id, or published again by the relay."""
        was_consuming, self._consuming = self._consuming, False
        try:
            if was_consuming:
                await self.relay.flush(FLUSH_SECONDS)
        finally:
            await self.relay.stop()  # whatever happened: its connection holds the leader lock
        try:
            if was_consuming and self.transport.connected:
                try:
                    await self.transport.unsubscribe(self.events_subscription)
                except (TransportError, TimeoutError) as exc:
                    log.warning("bus.leave_group_failed", error=str(exc) or type(exc).__name__)
                await self.processor.drain(DRAIN_SECONDS)
        finally:
            await self.processor.stop()

    async def close(self) -> None:
        """Disconnect for good (after ``quiesce``); later broadcasts raise ``TransportUnavailable``."""
        self.running = False
        self._closed = True
        if self._transport_started:
            self._transport_started = False
            await self.transport.stop()

    async def stop(self) -> None:
        """``quiesce`` then ``close``."""
        await self.quiesce()
        await self.close()
