"""The interface every bus transport implements, and the factory choosing one from ``TD_BUS_URL``.

Semantics shared by ``memory://`` and ``mqtt://`` (the contract suite in ``tests/events`` runs on both):

- ``send`` publishes with QoS 1: it waits for room in the in-flight window, hands the message to the
  broker and returns a future that completes when the broker acknowledged it (or fails with
  :class:`TransportUnavailable` when the connection drops first). Messages from one transport reach
  a subscriber in the order they were sent.
- ``subscribe`` takes an MQTT filter, ``$share/<group>/<filter>`` for a shared subscription (each
  message goes to one member of the group). Subscriptions survive reconnects.
- A handler's return acknowledges its message; an exception is logged and acknowledges it too (the
  consumer deals with its own failures). A message whose handler had not finished when the transport
  stopped is not acknowledged and is delivered again to the next transport with the same client id.
- Sessions are persistent: messages for a stopped client id wait for it (``memory://`` keeps them for
  the life of the process, a broker for the session expiry interval).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kernel.errors import TaylorDashError

MessageHandler = Callable[[str, bytes], Awaitable[None]]


class TransportError(TaylorDashError):
    """The transport cannot do what was asked."""


class TransportUnavailable(TransportError):
    """The broker cannot be reached right now; retry once the transport is connected again."""


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Connection settings every transport receives (most only matter to a network broker)."""

    client_id: str
    keepalive_seconds: int = 30
    session_expiry_seconds: int = 3600
    inflight_max: int = 256
    reconnect_max_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class Transport(ABC):
    """A connection to a message broker; see the module docstring for the shared semantics."""

    def __init__(self) -> None:
        self._connected = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether messages can be sent right now."""
        return self._connected.is_set()

    async def wait_connected(self, seconds: float | None = None) -> bool:
        """Wait until connected; ``False`` if ``seconds`` passed first."""
        if self._connected.is_set():
            return True
        with contextlib.suppress(TimeoutError):  # asyncio.timeout: wait_for can swallow a cancellation on 3.11
            async with asyncio.timeout(seconds):
                await self._connected.wait()
        return self._connected.is_set()

    @abstractmethod
    async def start(self) -> None:
        """Begin connecting (and reconnecting) in the background; returns at once."""

    @abstractmethod
    async def stop(self) -> None:
        """Disconnect for good. Unfinished handlers are cancelled and their messages left unacknowledged."""

    @abstractmethod
    async def subscribe(self, pattern: str, handler: MessageHandler) -> None:
        """Deliver messages matching ``pattern`` to ``handler``; confirmed by the broker when connected."""

    @abstractmethod
    async def unsubscribe(self, pattern: str) -> None:
        """Stop the broker sending messages for ``pattern`` (confirmed when connected); messages
        already on their way still reach its handler. Leaving a shared group this way before
        stopping hands the group's next messages to the other members."""

    @abstractmethod
    async def send(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        """Publish with QoS 1 once the in-flight window has room; the returned future completes when
        the broker acknowledged the message. Raises :class:`TransportUnavailable` when not connected."""

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish and wait for the broker's acknowledgement."""
        await (await self.send(topic, payload))


def create_transport(url: str, options: TransportOptions) -> Transport:
    """The transport serving ``url`` (``memory://[name]``, ``mqtt://…`` or ``mqtts://…``)."""
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from kernel.bus.memory import MemoryTransport

        return MemoryTransport(url, options)
    if scheme in ("mqtt", "mqtts"):
        from kernel.bus.mqtt import MqttTransport

        return MqttTransport(url, options)
    raise TransportError(f"no transport for {scheme!r} URLs")
