"""``mqtt://`` and ``mqtts://``: MQTT 5 through gmqtt, QoS 1, persistent sessions, TLS, reconnects.

One gmqtt client per connection: when a connection drops, its unacknowledged publishes fail (the
relay sends them again) and the next connection resumes the broker session under the same client id,
where the broker kept the subscriptions and the messages queued for us. Reconnects back off
exponentially (with jitter) up to ``reconnect_max_seconds``. Publishing is flow-controlled: at most
``min(inflight_max, broker receive maximum - 2)`` QoS 1 messages await their PUBACK at a time, so
gmqtt never runs out of packet ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import gmqtt
import structlog
from gmqtt.mqtt.constants import PubRecReasonCode
from gmqtt.mqtt.handler import MQTTConnectError

from kernel.bus.topics import check_filter, check_topic, matches, split_shared
from kernel.bus.transport import (
    MessageHandler,
    Transport,
    TransportError,
    TransportOptions,
    TransportUnavailable,
)

log = structlog.get_logger("taylordash.bus.mqtt")
# gmqtt logs every connection event itself, partly at WARNING; the transport logs them once, structured.
logging.getLogger("gmqtt").setLevel(logging.ERROR)
SUBACK_TIMEOUT = 10.0
STOP_SECONDS = 5.0
STABLE_CONNECTION_SECONDS = 10.0


class _Client(gmqtt.Client):
    """A gmqtt client that leaves reconnecting to :class:`MqttTransport` instead of retrying on a
    fixed delay by itself."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


class _CoalescingWriter:
    """Stands in for the socket transport of a gmqtt connection and joins everything written during
    one event-loop iteration into a single write: a batch of PUBLISHes (or the PUBACKs of a stored
    batch) costs one system call and one wake-up of the broker instead of one per message."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._chunks:
            asyncio.get_running_loop().call_soon(self._flush)
        self._chunks.append(bytes(data))

    def _flush(self) -> None:
        chunks, self._chunks = self._chunks, []
        if chunks and not self._transport.is_closing():
            self._transport.write(b"".join(chunks))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _coalesce_writes(client: gmqtt.Client) -> None:
    # gmqtt writes each packet straight to its transport; both of its objects holding the
    # transport get the coalescing stand-in (gmqtt offers no hook for this).
    connection = client._connection
    writer = _CoalescingWriter(connection._transport)
    connection._transport = writer
    connection._protocol._transport = writer


class _AckTracker:
    """gmqtt's store of in-flight QoS 1 publishes, used to learn of PUBACKs: gmqtt pushes each
    outgoing packet here and removes it when the broker acknowledges it."""

    def __init__(self) -> None:
        self._pending: dict[int, asyncio.Future[None]] = {}
        self.last: asyncio.Future[None] | None = None
        self.settled: Callable[[int], None] = lambda count: None  # frees window slots

    def push_message(self, mid: int, raw_package: bytes) -> None:
        future = self._pending.get(mid)
        if future is None:
            future = self._pending[mid] = asyncio.get_running_loop().create_future()
        self.last = future

    def remove_message_by_mid(self, mid: int) -> None:
        future = self._pending.pop(mid, None)
        if future is not None:
            self.settled(1)
            if not future.done():
                future.set_result(None)

    @property
    def is_empty(self) -> bool:
        return not self._pending

    async def wait_empty(self) -> None:
        return None  # a fresh client has nothing to replay

    def get_all(self) -> list[tuple[int, bytes]]:
        return []

    def clear(self) -> None:
        self.fail(TransportUnavailable("the broker did not resume the session"))

    def fail(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        self.settled(len(pending))
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here: a caller that gave up must not cause a warning


@dataclass
class _Connection:
    client: _Client
    tracker: _AckTracker
    window: int = 1
    inflight: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    subacks: dict[int, asyncio.Future[tuple[int, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tracker.settled = self.release

    def release(self, count: int) -> None:
        self.inflight -= count
        self.room.set()


class MqttTransport(Transport):
    """An MQTT 5 broker connection (``mqtt://user:pass@host:1883``, ``mqtts://…:8883``)."""

    def __init__(self, url: str, options: TransportOptions) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.options = options
        self.host = parts.hostname or "localhost"
        self.tls = parts.scheme == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._patterns: dict[str, int] = {}  # subscriptions to (re)make, by MQTT subscription identifier
        self._identifiers = 0
        self._handlers: dict[int, tuple[str, MessageHandler]] = {}
        self._conn: _Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``mqtts://`` (CA and client certificate from the settings)."""
        if not self.tls:
            return None
        ca = self.options.tls_ca_file
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if self.options.tls_cert_file:
            key = self.options.tls_key_file
            context.load_cert_chain(str(self.options.tls_cert_file), str(key) if key else None)
        return context

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._supervise(), name="bus-mqtt")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            _, stuck = await asyncio.wait({task}, timeout=STOP_SECONDS)
            if stuck:  # gmqtt did not let go: stopping must not hang on it
                log.warning("bus.stop_incomplete", waiting_in=repr(task))
        conn, self._conn = self._conn, None
        self._connected.clear()
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await conn.client.disconnect()
            self._forget(conn)
        # The connection is closed, so these handlers' acknowledgements never reach the broker.
        handling = list(self._handling)
        for handler_task in handling:
            handler_task.cancel()
        if handling:
            await asyncio.wait(handling, timeout=STOP_SECONDS)

    async def subscribe(self, pattern: str, handler: MessageHandler) -> None:
        _, topic_filter = split_shared(pattern)
        check_filter(topic_filter)
        if pattern not in self._patterns:
            self._identifiers += 1
            self._patterns[pattern] = self._identifiers
        identifier = self._patterns[pattern]
        self._handlers[identifier] = (topic_filter, handler)
        conn = self._conn
        if conn is not None and self.connected:
            await self._subscribe(conn, pattern, identifier)

    async def unsubscribe(self, pattern: str) -> None:
        if self._patterns.pop(pattern, None) is None:
            return
        conn = self._conn
        if conn is None or not self.connected:
            return  # not resubscribed on reconnect; a resumed session still holds it until then
        mid = conn.client.unsubscribe(pattern)
        future = conn.subacks[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(SUBACK_TIMEOUT):
                await future
        finally:
            conn.subacks.pop(mid, None)

    async def send(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        check_topic(topic)
        while True:
            conn = self._conn
            if conn is None or not self.connected or conn.lost.is_set():
                raise TransportUnavailable(f"not connected to the MQTT broker at {self.host}:{self.port}")
            if conn.inflight < conn.window:
                break
            conn.room.clear()
            await conn.room.wait()
        conn.inflight += 1
        try:
            conn.client.publish(gmqtt.Message(topic, payload, qos=1))
        except Exception as exc:  # nothing was pushed to the tracker
            conn.inflight -= 1
            raise TransportUnavailable(f"publishing failed: {exc!r}") from exc
        future = conn.tracker.last
        assert future is not None
        return future

    # -- connection supervision -------------------------------------------------------------------
    async def _supervise(self) -> None:
        delay = 0.5
        while not self._stopping:
            conn = await self._connect()
            if conn is not None:
                connected_at = time.monotonic()
                self._conn = conn
                try:
                    await self._subscribe_all(conn)
                except (TransportError, TimeoutError) as exc:
                    log.error("bus.subscribe_failed", error=str(exc))
                    await self._close(conn)
                else:
                    self._connected.set()
                    log.info("bus.connected", host=self.host, port=self.port, client_id=self.options.client_id)
                    await conn.lost.wait()
                    log.warning("bus.disconnected", host=self.host, port=self.port)
                self._connected.clear()
                self._conn = None
                self._forget(conn)
                if time.monotonic() - connected_at > STABLE_CONNECTION_SECONDS:
                    delay = 0.5
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, self.options.reconnect_max_seconds)

    async def _connect(self) -> _Connection | None:
        tracker = _AckTracker()
        client = _Client(
            self.options.client_id,
            clean_session=False,
            optimistic_acknowledgement=False,
            persistent_storage=tracker,
            session_expiry_interval=self.options.session_expiry_seconds,
        )
        conn = _Connection(client, tracker)
        properties: dict[str, Any] = {}
        client.on_connect = lambda _client, _flags, _rc, props: properties.update(props)
        client.on_message = self._on_message
        client.on_disconnect = lambda _client, packet, exc=None: self._lost(conn, packet)
        client.on_subscribe = lambda _client, mid, qos, _props: self._suback(conn, mid, qos)
        client.on_unsubscribe = lambda _client, mid, codes: self._suback(conn, mid, codes)
        if self.username is not None:
            client.set_auth_credentials(self.username, self.password)
        try:
            async with asyncio.timeout(self.options.connect_timeout_seconds):
                ssl_context = self.ssl_context() or False
                await client.connect(self.host, self.port, ssl=ssl_context, keepalive=self.options.keepalive_seconds)
        except (OSError, TimeoutError, MQTTConnectError, ssl.SSLError) as exc:
            log.warning("bus.connect_failed", host=self.host, port=self.port, error=str(exc) or type(exc).__name__)
            await self._close(conn)
            return None
        _coalesce_writes(client)
        receive_maximum = (properties.get("receive_maximum") or [65535])[0]
        conn.window = max(1, min(self.options.inflight_max, receive_maximum - 2))
        return conn

    def _lost(self, conn: _Connection, packet: Any) -> None:
        if isinstance(packet, bytes | bytearray) and packet and packet[0] == 0x8E:
            log.error(
                "bus.session_taken_over",
                client_id=self.options.client_id,
                hint="another process uses this client id; give each instance its own TD_BUS_CLIENT_ID",
            )
        conn.lost.set()
        conn.room.set()

    async def _close(self, conn: _Connection) -> None:
        # gmqtt has no public "is a socket open" for a connect that failed half-way.
        if conn.client._connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await conn.client.disconnect()

    def _forget(self, conn: _Connection) -> None:
        conn.tracker.fail(TransportUnavailable("the connection to the broker was lost"))
        for future in conn.subacks.values():
            if not future.done():
                future.cancel()
        conn.room.set()

    # -- subscriptions --------------------------------------------------------------------------
    async def _subscribe_all(self, conn: _Connection) -> None:
        """Subscribe everything, including what ``subscribe`` added meanwhile (until connected, it
        leaves subscribing to this)."""
        done: set[str] = set()
        while todo := [(p, i) for p, i in self._patterns.items() if p not in done]:
            for pattern, identifier in todo:
                await self._subscribe(conn, pattern, identifier)
                done.add(pattern)

    async def _subscribe(self, conn: _Connection, pattern: str, identifier: int) -> None:
        mid = conn.client.subscribe(gmqtt.Subscription(pattern, qos=1), subscription_identifier=identifier)
        future = conn.subacks[mid] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(SUBACK_TIMEOUT):
                granted = await future
        except asyncio.CancelledError:
            if conn.lost.is_set():
                raise TransportUnavailable("the connection was lost while subscribing") from None
            raise
        finally:
            conn.subacks.pop(mid, None)
        if any(code >= 0x80 for code in granted):
            raise TransportError(f"the broker refused the subscription {pattern!r} (reason {granted[0]:#x})")

    def _suback(self, conn: _Connection, mid: int, granted: tuple[int, ...]) -> None:
        future = conn.subacks.get(mid)
        if future is not None and not future.done():
            future.set_result(tuple(granted))

    # -- delivery -------------------------------------------------------------------------------
    def _route(self, topic: str, properties: dict[str, Any]) -> list[MessageHandler]:
        identifiers = properties.get("subscription_identifier") or []
        routed = [self._handlers[i][1] for i in identifiers if i in self._handlers]
        if routed:
            return routed
        return [handler for topic_filter, handler in self._handlers.values() if matches(topic_filter, topic)]

    async def _on_message(self, client: Any, topic: str, payload: bytes, qos: int, properties: dict[str, Any]) -> int:
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        try:
            for handler in self._route(topic, properties):
                try:
                    await handler(topic, payload)
                except Exception:
                    log.exception("bus.handler_failed", topic=topic)
        except asyncio.CancelledError:
            # Stopping: the connection is already closed, so this answer never reaches the broker and
            # the message is delivered again to the next session with our client id.
            return PubRecReasonCode.UNSPECIFIED_ERROR
        finally:
            if task is not None:
                self._handling.discard(task)
        return PubRecReasonCode.SUCCESS
