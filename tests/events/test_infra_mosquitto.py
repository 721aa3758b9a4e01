"""infra/mosquitto as shipped: authentication, per-user ACLs, persistence and the TLS listener,
started through its own entrypoint with the local Mosquitto binaries."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernel.bus.transport import TransportOptions, create_transport
from tests.events.helpers import eventually
from tests.support.services import _wait, free_port, mosquitto_binary

INFRA = Path(__file__).resolve().parents[2] / "infra" / "mosquitto"


class Broker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self.tls_port = free_port(), free_port()
        self.certs = root / "certs"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "MOSQUITTO_CONFIG_DIR": str(INFRA),
            "MOSQUITTO_DATA_DIR": str(self.root / "data"),
            "MOSQUITTO_CERTS_DIR": str(self.certs),
            "MQTT_PORT": str(self.port),
            "MQTTS_PORT": str(self.tls_port),
            "MOSQUITTO_BIN": str(mosquitto_binary()),
            "MQTT_USERNAME": "taylordash",
            "MQTT_PASSWORD": "kernel-secret",
            "MQTT_OBSERVER_PASSWORD": "observer-secret",
        }
        with (self.root / "broker.log").open("a") as log:
            self.proc = subprocess.Popen(["/bin/sh", str(INFRA / "entrypoint.sh")], env=env, stdout=log, stderr=log)
        assert _wait("127.0.0.1", self.port, 10) and _wait("127.0.0.1", self.tls_port, 10), self.log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return (self.root / "broker.log").read_text()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    if mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None or shutil.which("openssl") is None:
        pytest.skip("needs mosquitto, mosquitto_passwd and openssl")
    root = Path(tempfile.mkdtemp(prefix="td-infra-mqtt-"))  # pytest's own tmp dirs are closed to other users
    root.chmod(0o755)  # Mosquitto reads its files as the mosquitto user
    broker = Broker(root)
    made = subprocess.run(
        ["/bin/sh", str(INFRA / "make-certs.sh"), str(broker.certs), "localhost"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(root, ignore_errors=True)


def transport(url: str, **options):
    defaults = {
        "client_id": f"td-infra-{uuid.uuid4().hex[:8]}",
        "session_expiry_seconds": 60,
        "connect_timeout_seconds": 3,
    }
    return create_transport(url, TransportOptions(**{**defaults, **options}))


async def connected(url: str, **options):
    t = transport(url, **options)
    await t.start()
    return t, await t.wait_connected(3)


async def test_anonymous_and_wrong_passwords_are_refused(broker: Broker):
    for url in (f"mqtt://127.0.0.1:{broker.port}", f"mqtt://taylordash:wrong@127.0.0.1:{broker.port}"):
        t, ok = await connected(url)
        await t.stop()
        assert not ok


async def test_acls_per_user(broker: Broker):
    kernel, ok = await connected(f"mqtt://taylordash:kernel-secret@127.0.0.1:{broker.port}")
    assert ok
    observer, ok = await connected(f"mqtt://observer:observer-secret@127.0.0.1:{broker.port}")
    assert ok
    try:
        seen: list[tuple[str, bytes]] = []

        async def record(topic: str, payload: bytes) -> None:
            seen.append((topic, payload))

        await observer.subscribe("$share/taylordash/tracker/events/#", record)
        await observer.subscribe("tracker/broadcast/#", record)  # granted, but its messages are not delivered
        await kernel.publish("tracker/broadcast/auth/revoked", b"for-kernels-only")
        await kernel.publish("tracker/events/projects/created", b"from-kernel")
        await observer.publish("tracker/events/projects/created", b"from-observer")  # denied: dropped
        await kernel.publish("tracker/other/thing", b"outside-acl")  # denied: dropped

        async def got_one() -> bool:
            return bool(seen)

        await eventually(got_one)
        await asyncio.sleep(0.3)
        assert seen == [("tracker/events/projects/created", b"from-kernel")]
    finally:
        await kernel.stop()
        await observer.stop()


async def test_tls_listener(broker: Broker):
    url = f"mqtts://taylordash:kernel-secret@localhost:{broker.tls_port}"
    trusted, ok = await connected(url, tls_ca_file=broker.certs / "ca.crt")
    try:
        assert ok
        seen: list[bytes] = []

        async def record(topic: str, payload: bytes) -> None:
            seen.append(payload)

        await trusted.subscribe("tracker/events/#", record)
        await trusted.publish("tracker/events/tasks/created", b"over-tls")

        async def received() -> bool:
            return seen == [b"over-tls"]

        await eventually(received)
    finally:
        await trusted.stop()
    untrusted, ok = await connected(url)  # the private CA is not in the system trust store
    await untrusted.stop()
    assert not ok
    client_cert, ok = await connected(
        url,
        tls_ca_file=broker.certs / "ca.crt",
        tls_cert_file=broker.certs / "client.crt",
        tls_key_file=broker.certs / "client.key",
    )
    await client_cert.stop()
    assert ok


async def test_persistence_keeps_queued_messages_across_a_restart(broker: Broker):
    url = f"mqtt://taylordash:kernel-secret@127.0.0.1:{broker.port}"
    client_id = f"td-infra-{uuid.uuid4().hex[:8]}"
    shared = f"$share/{client_id}/tracker/events/#"  # a group of its own: others' offline sessions would get a share
    seen: list[bytes] = []

    async def record(topic: str, payload: bytes) -> None:
        seen.append(payload)

    consumer = transport(url, client_id=client_id)
    await consumer.subscribe(shared, record)
    await consumer.start()
    assert await consumer.wait_connected(3)
    await consumer.stop()
    producer, _ = await connected(url)
    await producer.publish("tracker/events/tasks/created", b"queued")
    await producer.stop()
    await asyncio.to_thread(broker.stop)
    assert (broker.root / "data" / "mosquitto.db").exists()
    await asyncio.to_thread(broker.start)
    again = transport(url, client_id=client_id)
    await again.subscribe(shared, record)
    await again.start()
    try:

        async def received() -> bool:
            return seen == [b"queued"]

        await eventually(received)
    finally:
        await again.stop()
