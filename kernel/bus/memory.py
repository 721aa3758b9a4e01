"""``memory://``: an in-process broker with the semantics of the MQTT transport.

``memory://`` gives each bus a private broker (the embedded single-instance mode);
``memory://<name>`` shares one broker between every bus of the process using that name, which is how
tests run several kernel instances against one "broker" without a network.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import ClassVar
from urllib.parse import urlsplit

import structlog

from kernel.bus.topics import check_filter, check_topic, matches, split_shared
from kernel.bus.transport import MessageHandler, Transport, TransportOptions, TransportUnavailable

log = structlog.get_logger("taylordash.bus.memory")
Message = tuple[str, str, bytes]  # (subscription pattern, topic, payload)


class _Session:
    """What the broker keeps for one client id: its subscriptions and the messages waiting for it."""

    def __init__(self, client_id: str) -> None:
        self.client_id = client_id
        self.subscriptions: dict[str, tuple[str | None, str]] = {}
        self.queue: deque[Message] = deque()
        self.transport: MemoryTransport | None = None

    def push(self, message: Message) -> None:
        """Queue ``message`` and deliver it if the client is connected."""
        self.queue.append(message)
        if self.transport is not None:
            self.transport._pump()


class MemoryBroker:
    """Sessions by client id; shared groups served round-robin, like Mosquitto, including members
    whose transport is stopped (their messages wait in the session)."""

    _named: ClassVar[dict[str, MemoryBroker]] = {}

    def __init__(self) -> None:
        self.sessions: dict[str, _Session] = {}
        self._turn: dict[tuple[str, str], int] = {}

    @classmethod
    def for_url(cls, url: str) -> MemoryBroker:
        """A private broker for ``memory://``, the process-wide named one for ``memory://<name>``."""
        parts = urlsplit(url)
        name = (parts.netloc + parts.path).strip("/")
        if not name:
            return cls()
        return cls._named.setdefault(name, cls())

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue the message for every plain subscriber and one member of each shared group."""
        groups: dict[tuple[str, str], list[tuple[_Session, str]]] = {}
        for session in self.sessions.values():
            for pattern, (group, topic_filter) in session.subscriptions.items():
                if not matches(topic_filter, topic):
                    continue
                if group is None:
                    session.push((pattern, topic, payload))
                else:
                    groups.setdefault((group, topic_filter), []).append((session, pattern))
        for key, members in groups.items():
            turn = self._turn.get(key, 0)
            self._turn[key] = turn + 1
            session, pattern = members[turn % len(members)]
            session.push((pattern, topic, payload))


class MemoryTransport(Transport):
    """A client of a :class:`MemoryBroker`."""

    def __init__(self, url: str, options: TransportOptions) -> None:
        super().__init__()
        self.broker = MemoryBroker.for_url(url)
        self.options = options
        self._handlers: dict[str, MessageHandler] = {}
        self._subscribed: set[str] = set()
        self._session: _Session | None = None
        self._inflight: dict[asyncio.Task[None], Message] = {}
        self._unacked: list[Message] = []

    async def start(self) -> None:
        if self._session is not None:
            return
        session = self.broker.sessions.get(self.options.client_id)
        if session is None:
            session = self.broker.sessions[self.options.client_id] = _Session(self.options.client_id)
        elif session.transport is not None:  # a second client with this id takes the session over
            await session.transport.stop()
        session.transport = self
        self._session = session
        for pattern in self._subscribed:
            session.subscriptions[pattern] = split_shared(pattern)
        self._connected.set()
        self._pump()

    async def stop(self) -> None:
        session = self._session
        if session is None:
            return
        self._connected.clear()
        self._session = None
        session.transport = None
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session.queue.extendleft(reversed(self._unacked))
        self._unacked.clear()
        if self.options.session_expiry_seconds == 0:
            self.broker.sessions.pop(session.client_id, None)

    async def subscribe(self, pattern: str, handler: MessageHandler) -> None:
        _, topic_filter = split_shared(pattern)
        check_filter(topic_filter)
        self._handlers[pattern] = handler
        self._subscribed.add(pattern)
        if self._session is not None:
            self._session.subscriptions[pattern] = split_shared(pattern)
            self._pump()

    async def unsubscribe(self, pattern: str) -> None:
        self._subscribed.discard(pattern)
        if self._session is not None:
            self._session.subscriptions.pop(pattern, None)

    async def send(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        check_topic(topic)
        if self._session is None:
            raise TransportUnavailable("the memory transport is not started")
        self.broker.publish(topic, payload)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    # -- delivery ---------------------------------------------------------------------------------
    def _pump(self) -> None:
        session = self._session
        while session is not None and session.queue and len(self._inflight) < self.options.inflight_max:
            message = session.queue.popleft()
            task = asyncio.get_running_loop().create_task(self._deliver(message))
            self._inflight[task] = message
            task.add_done_callback(self._delivered)

    async def _deliver(self, message: Message) -> None:
        pattern, topic, payload = message
        handler = self._handlers.get(pattern)
        if handler is None:
            return
        try:
            await handler(topic, payload)
        except Exception:
            log.exception("bus.handler_failed", topic=topic)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        message = self._inflight.pop(task)
        if task.cancelled():
            self._unacked.append(message)
            return
        self._pump()
