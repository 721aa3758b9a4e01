"""Revocation across instances: evict cached credentials everywhere before a revocation returns.

The database is the authority; every instance caches what it read from it. A revocation is broadcast
on ``tracker/broadcast/auth/revoked`` and every instance of the deployment evicts the named sessions,
users and tokens, then acknowledges. The revoking request waits (up to ``wait_seconds``) for the
acknowledgements of every known peer and for its own message to come back, so when it answers, no
instance still trusts the revoked credential. Instances learn about each other with ``hello`` once
their bus is running, leave with ``bye``, and a peer that stops acknowledging is forgotten.

Messages carry a timestamp and an HMAC made with a key derived from the deployment secret: instances
of other deployments on the same broker, anyone else publishing there, and replays are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from builtin_plugins.auth.authn import Authenticator
from builtin_plugins.auth.tokens import derive

TOPIC_ROOT = "tracker/broadcast/auth"
BUS_START_WAIT_SECONDS = 120.0
MAX_AGE_SECONDS = 60.0  # older messages are replays (instances' clocks must agree within this)
log = structlog.get_logger("taylordash.auth")


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str) and len(item) <= 64][:10_000]


@dataclass
class _Pending:
    waiting_for: set[str]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Revocations:
    """This instance's end of the revocation protocol."""

    def __init__(self, authenticator: Authenticator, wait_seconds: float, secret: bytes) -> None:
        self.authenticator = authenticator
        self.wait_seconds = wait_seconds
        self.instance = uuid.uuid4().hex
        self.peers: set[str] = set()
        self._key = derive(secret, "revocation-broadcast")
        self._bus: Any = None
        self._pending: dict[str, _Pending] = {}
        self._greeter: asyncio.Task[None] | None = None
        self._replies: set[asyncio.Task[bool]] = set()

    # -- wiring ----------------------------------------------------------------------------------
    def connect(self, bus: Any) -> bool:
        """Listen on the kernel's bus and greet the other instances once it runs (``False``: no bus)."""
        if bus is None or not hasattr(bus, "on_broadcast") or not hasattr(bus, "broadcast"):
            return False
        bus.on_broadcast(f"{TOPIC_ROOT}/+", self.receive)
        self._bus = bus
        self._greeter = asyncio.get_running_loop().create_task(self._greet(bus), name="auth-revocation-hello")
        return True

    async def _greet(self, bus: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BUS_START_WAIT_SECONDS
        while not getattr(bus, "running", False):  # replies can only arrive once the bus subscribed
            if loop.time() > deadline:
                return
            await asyncio.sleep(0.02)
        await self._send("hello", {"reply": False})

    async def close(self) -> None:
        """Say goodbye, so that peers stop waiting for this instance."""
        if self._greeter is not None:
            self._greeter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._greeter
        await self._send("bye", {})

    # -- messages ----------------------------------------------------------------------------------
    def _mac(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()

    @property
    def live(self) -> bool:
        """Whether messages can go out: the bus is running (sending to a stopped bus would restart it)."""
        return self._bus is not None and bool(getattr(self._bus, "running", False))

    async def _send(self, kind: str, payload: dict[str, Any]) -> bool:
        if not self.live:
            return False
        message = {**payload, "from": self.instance, "at": time.time()}
        try:
            await self._bus.broadcast(f"{TOPIC_ROOT}/{kind}", {**message, "mac": self._mac(message)})
        except Exception as exc:  # the database holds every revocation; caches expire on their own
            log.warning("auth.broadcast_failed", kind=kind, error=repr(exc))
            return False
        return True

    def _reply(self, kind: str, payload: dict[str, Any]) -> None:
        """Send from a task of its own: the bus delivers messages one after the other, and a reply
        waits for the broker's acknowledgement."""
        task = asyncio.get_running_loop().create_task(self._send(kind, payload))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def receive(self, topic: str, payload: dict[str, Any]) -> None:
        """Handle one broadcast of the protocol (from any instance, this one included)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("mac"), str):
            return
        message = {k: v for k, v in payload.items() if k != "mac"}
        if not hmac.compare_digest(self._mac(message), payload["mac"]):
            return
        sent_at = message.get("at")
        if not isinstance(sent_at, int | float) or abs(time.time() - sent_at) > MAX_AGE_SECONDS:
            return  # a replayed message
        sender, kind = message.get("from"), topic.rsplit("/", 1)[-1]
        if not isinstance(sender, str):
            return
        mine = sender == self.instance
        if not mine and kind != "bye":
            self.peers.add(sender)
        if kind == "revoked":
            self.authenticator.evict(
                _strings(message.get("sessions")), _strings(message.get("users")), _strings(message.get("tokens"))
            )
            if mine:
                self._acknowledged(str(message.get("nonce")), sender)
            else:
                self._reply("ack", {"nonce": message.get("nonce"), "to": sender})
        elif kind == "ack" and message.get("to") == self.instance:
            self._acknowledged(str(message.get("nonce")), sender)
        elif kind == "hello" and not mine and not message.get("reply"):
            self._reply("hello", {"reply": True})
        elif kind == "bye" and not mine:
            self.peers.discard(sender)
            for pending in self._pending.values():
                self._settle(pending, sender)

    def _acknowledged(self, nonce: str, sender: str) -> None:
        pending = self._pending.get(nonce)
        if pending is not None:
            self._settle(pending, sender)

    @staticmethod
    def _settle(pending: _Pending, instance: str) -> None:
        pending.waiting_for.discard(instance)
        if not pending.waiting_for:
            pending.done.set()

    # -- revoking --------------------------------------------------------------------------------
    async def announce(
        self, sessions: Iterable[str] = (), users: Iterable[str] = (), tokens: Iterable[str] = ()
    ) -> None:
        """Evict here at once, then on every instance; returns when all have acknowledged (or after
        ``wait_seconds``, forgetting the peers that did not answer)."""
        payload = {
            "sessions": [str(s) for s in sessions],
            "users": [str(u) for u in users],
            "tokens": [str(t) for t in tokens],
        }
        self.authenticator.evict(payload["sessions"], payload["users"], payload["tokens"])
        if not self.live:
            return
        nonce = uuid.uuid4().hex
        pending = _Pending({self.instance, *self.peers})
        self._pending[nonce] = pending
        try:
            if await self._send("revoked", {**payload, "nonce": nonce}):
                await asyncio.wait_for(pending.done.wait(), self.wait_seconds)
        except TimeoutError:
            silent = pending.waiting_for - {self.instance}
            self.peers -= silent
            log.warning("auth.revocation_unconfirmed", silent_peers=len(silent), wait_seconds=self.wait_seconds)
        finally:
            self._pending.pop(nonce, None)
