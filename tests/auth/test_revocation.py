"""The revocation protocol between instances, over an in-process stand-in for the bus."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from builtin_plugins.auth.authn import Authenticator, Entry
from builtin_plugins.auth.revocation import TOPIC_ROOT, Revocations
from kernel.bus.topics import matches
from sdk import Principal


class Broker:
    """Delivers every broadcast to every connected bus, each in its own task (as a network would)."""

    def __init__(self) -> None:
        self.buses: list[FakeBus] = []

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        for bus in list(self.buses):
            for pattern, handler in bus.handlers:
                if matches(pattern, topic):
                    asyncio.get_running_loop().call_later(
                        0.001, lambda h=handler: asyncio.ensure_future(h(topic, dict(payload)))
                    )


class FakeBus:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.handlers: list[tuple[str, Any]] = []
        self.running = True
        broker.buses.append(self)

    def on_broadcast(self, pattern: str, handler: Any) -> None:
        self.handlers.append((pattern, handler))

    async def broadcast(self, topic: str, payload: dict[str, Any]) -> None:
        await self.broker.publish(topic, payload)


def instance(broker: Broker, secret: bytes = b"one deployment", wait: float = 1.0) -> tuple[Revocations, Authenticator]:
    authenticator = Authenticator(db=None, access=None, cache_seconds=60, max_entries=100)  # type: ignore[arg-type]
    revocations = Revocations(authenticator, wait, secret)
    revocations.connect(FakeBus(broker))
    return revocations, authenticator


def cache(authenticator: Authenticator, session_id: str, user_id: str) -> None:
    principal = Principal(id=user_id, role="viewer", session_id=session_id)
    authenticator.sessions[session_id] = Entry(principal, user_id, time.monotonic() + 60, time.time() + 60)


async def settle() -> None:
    await asyncio.sleep(0.05)


async def test_peers_greet_acknowledge_and_evict_before_the_revocation_returns():
    broker = Broker()
    (a, cache_a), (b, cache_b) = instance(broker), instance(broker)
    await settle()
    assert a.peers == {b.instance} and b.peers == {a.instance}
    cache(cache_b, "s1", "u1")
    cache(cache_b, "s2", "u2")
    cache(cache_a, "s2", "u2")
    await a.announce(sessions=["s1"])
    assert "s1" not in cache_b.sessions and "s2" in cache_b.sessions  # evicted by the time it returned
    await b.announce(users=["u2"])
    assert "s2" not in cache_a.sessions and "s2" not in cache_b.sessions


async def test_a_silent_peer_is_waited_for_once_then_forgotten():
    broker = Broker()
    (a, _), (b, _) = instance(broker, wait=0.2), instance(broker)
    await settle()
    broker.buses.remove(next(bus for bus in broker.buses if b.receive in [h for _, h in bus.handlers]))
    started = time.perf_counter()
    await a.announce(sessions=["x"])
    assert time.perf_counter() - started >= 0.2 and a.peers == set()
    started = time.perf_counter()
    await a.announce(sessions=["y"])
    assert time.perf_counter() - started < 0.1


async def test_other_deployments_and_forgeries_are_ignored():
    broker = Broker()
    (a, cache_a), (other, _) = instance(broker), instance(broker, secret=b"another deployment")
    await settle()
    assert a.peers == set() and other.peers == set()
    cache(cache_a, "s1", "u1")
    await a.receive(
        f"{TOPIC_ROOT}/revoked", {"from": "mallory", "at": time.time(), "sessions": ["s1"], "nonce": "n", "mac": "00"}
    )
    await other.announce(sessions=["s1"])
    await settle()
    assert "s1" in cache_a.sessions
    stale = {"from": "someone", "at": time.time() - 600, "sessions": ["s1"], "nonce": "n"}
    await a.receive(f"{TOPIC_ROOT}/revoked", {**stale, "mac": a._mac(stale)})  # genuine but replayed
    assert "s1" in cache_a.sessions
    fresh = {**stale, "at": time.time()}
    await a.receive(f"{TOPIC_ROOT}/revoked", {**fresh, "mac": a._mac(fresh)})
    assert "s1" not in cache_a.sessions


async def test_without_a_bus_revocation_is_local():
    authenticator = Authenticator(db=None, access=None, cache_seconds=60, max_entries=100)  # type: ignore[arg-type]
    revocations = Revocations(authenticator, 1.0, b"secret")
    assert revocations.connect(None) is False
    cache(authenticator, "s1", "u1")
    await revocations.announce(sessions=["s1"])
    assert authenticator.sessions == {}
