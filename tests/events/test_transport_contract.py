"""One contract, two transports: every test runs on ``memory://`` and on ``mqtt://`` (the machine's
Mosquitto, each test in its own topic namespace with its own client ids)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from kernel.bus.transport import Transport, TransportOptions, TransportUnavailable, create_transport
from tests.events.helpers import eventually


@pytest.fixture(params=["memory", "mqtt"])
def transport_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://contract-{uuid.uuid4().hex[:8]}"
    host, port = request.getfixturevalue("mqtt_broker")
    return f"mqtt://{host}:{port}"


@pytest.fixture
async def make(transport_url: str) -> AsyncIterator[Callable[..., Transport]]:
    """Creates transports; every one is stopped (and its broker session ended) after the test."""
    made: list[Transport] = []
    prefix = uuid.uuid4().hex[:8]

    def factory(name: str, session_expiry: int = 60, inflight: int = 256) -> Transport:
        options = TransportOptions(client_id=f"td-contract-{prefix}-{name}", session_expiry_seconds=session_expiry,
                                   inflight_max=inflight)  # fmt: skip
        transport = create_transport(transport_url, options)
        made.append(transport)
        return transport

    factory.prefix = f"tdtest/{prefix}"  # type: ignore[attr-defined]
    yield factory
    for transport in made:
        await transport.stop()
    for transport in made:  # end the sessions so the broker keeps nothing
        transport.options = TransportOptions(client_id=transport.options.client_id, session_expiry_seconds=0)
        if transport_url.startswith("mqtt"):
            cleaner = create_transport(transport_url, transport.options)
            await cleaner.start()
            await cleaner.wait_connected(5)
            await cleaner.stop()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def __call__(self, topic: str, payload: bytes) -> None:
        self.messages.append((topic, payload))

    def payloads(self) -> list[bytes]:
        return [payload for _, payload in self.messages]


async def started(transport: Transport) -> Transport:
    await transport.start()
    assert await transport.wait_connected(5)
    return transport


async def test_publish_subscribe_with_wildcards(make):
    root = make.prefix
    inbox_plus, inbox_hash, inbox_exact = Inbox(), Inbox(), Inbox()
    sub = make("sub")
    await sub.subscribe(f"{root}/+/created", inbox_plus)
    await sub.subscribe(f"{root}/projects/#", inbox_hash)
    await started(sub)
    await sub.subscribe(f"{root}/tasks/updated", inbox_exact)  # after connecting, confirmed by the broker
    pub = await started(make("pub"))
    for topic in ("projects/created", "tasks/created", "tasks/updated", "projects/x/y"):
        await pub.publish(f"{root}/{topic}", topic.encode())
    await eventually(lambda: _ready(len(inbox_plus.messages) == 2 and len(inbox_hash.messages) == 2))
    await eventually(lambda: _ready(len(inbox_exact.messages) == 1))
    assert sorted(inbox_plus.payloads()) == [b"projects/created", b"tasks/created"]
    assert sorted(inbox_hash.payloads()) == [b"projects/created", b"projects/x/y"]
    assert inbox_exact.messages == [(f"{root}/tasks/updated", b"tasks/updated")]


async def _ready(value: bool) -> bool:
    return value


async def test_order_and_flow_control_over_many_messages(make):
    root = make.prefix
    inbox = Inbox()
    sub = make("sub")
    await sub.subscribe(f"{root}/n", inbox)
    await started(sub)
    pub = await started(make("pub", inflight=16))
    acks = [await pub.send(f"{root}/n", str(i).encode()) for i in range(3000)]  # far past any receive maximum
    await asyncio.gather(*acks)
    await eventually(lambda: _ready(len(inbox.messages) == 3000), seconds=30)
    assert [int(p) for p in inbox.payloads()] == list(range(3000))


async def test_shared_subscription_splits_the_work(make):
    root = make.prefix
    first, second = Inbox(), Inbox()
    a, b = make("a"), make("b")
    await a.subscribe(f"$share/grp/{root}/#", first)
    await b.subscribe(f"$share/grp/{root}/#", second)
    await started(a)
    await started(b)
    pub = await started(make("pub"))
    for i in range(200):
        await pub.publish(f"{root}/t", str(i).encode())
    await eventually(lambda: _ready(len(first.messages) + len(second.messages) == 200))
    await asyncio.sleep(0.2)
    got = [int(p) for p in first.payloads() + second.payloads()]
    assert sorted(got) == list(range(200))  # each message exactly once in the group
    assert first.messages and second.messages  # and both members got a share
    for inbox in (first, second):  # each member sees its share in order
        share = [int(p) for p in inbox.payloads()]
        assert share == sorted(share)


async def test_leaving_a_shared_group_hands_its_share_to_the_others(make):
    root = make.prefix
    first, second = Inbox(), Inbox()
    a, b = make("a"), make("b")
    await a.subscribe(f"$share/grp/{root}/#", first)
    await b.subscribe(f"$share/grp/{root}/#", second)
    await started(a)
    await started(b)
    await a.unsubscribe(f"$share/grp/{root}/#")
    await a.stop()  # its session lives on, but it is no member of the group any more
    pub = await started(make("pub"))
    for i in range(50):
        await pub.publish(f"{root}/t", str(i).encode())
    await eventually(lambda: _ready(len(second.messages) == 50))
    assert first.messages == []


async def test_plain_subscriptions_all_receive_everything(make):
    root = make.prefix
    inboxes = [Inbox() for _ in range(3)]
    transports = [make(f"s{i}") for i in range(3)]
    for transport, inbox in zip(transports, inboxes, strict=True):
        await transport.subscribe(f"{root}/#", inbox)
        await started(transport)
    await transports[0].publish(f"{root}/x", b"hello")  # the sender receives its own message too
    await eventually(lambda: _ready(all(inbox.messages for inbox in inboxes)))
    assert all(inbox.payloads() == [b"hello"] for inbox in inboxes)


async def test_messages_wait_for_a_stopped_session(make):
    root = make.prefix
    inbox = Inbox()
    sub = make("sub")
    await sub.subscribe(f"$share/grp/{root}/#", inbox)
    await started(sub)
    await sub.stop()
    pub = await started(make("pub"))
    for i in range(20):
        await pub.publish(f"{root}/t", str(i).encode())
    again = make("sub")  # same client id: resumes the session, subscriptions and queued messages
    later = Inbox()
    await again.subscribe(f"$share/grp/{root}/#", later)
    await started(again)
    await eventually(lambda: _ready(len(later.messages) == 20))
    assert [int(p) for p in later.payloads()] == list(range(20))


async def test_a_failing_handler_does_not_stop_delivery(make):
    root = make.prefix
    seen: list[bytes] = []

    async def flaky(topic: str, payload: bytes) -> None:
        seen.append(payload)
        if payload == b"1":
            raise RuntimeError("handler bug")

    sub = make("sub")
    await sub.subscribe(f"{root}/#", flaky)
    await started(sub)
    pub = await started(make("pub"))
    for i in range(3):
        await pub.publish(f"{root}/t", str(i).encode())
    await eventually(lambda: _ready(len(seen) == 3))


async def test_unfinished_message_is_delivered_again_after_a_stop(make):
    root = make.prefix
    release = asyncio.Event()
    calls: list[bytes] = []

    async def slow(topic: str, payload: bytes) -> None:
        calls.append(payload)
        await release.wait()

    sub = make("sub")
    await sub.subscribe(f"$share/grp/{root}/#", slow)
    await started(sub)
    pub = await started(make("pub"))
    await pub.publish(f"{root}/t", b"once")
    await eventually(lambda: _ready(calls == [b"once"]))
    await sub.stop()  # the handler never finished: not acknowledged
    again = make("sub")
    inbox = Inbox()
    await again.subscribe(f"$share/grp/{root}/#", inbox)
    await started(again)
    await eventually(lambda: _ready(inbox.payloads() == [b"once"]))


async def test_send_refuses_when_not_connected(make):
    transport = make("lonely")
    with pytest.raises(TransportUnavailable):
        await transport.send(f"{make.prefix}/t", b"x")
