"""infra/mosquitto as compose runs it: configuration lines, ACL, and the websockets listener started
through the entrypoint with the local Mosquitto (authentication, ACLs, persistence and TLS are
exercised by tests/events/test_infra_mosquitto.py)."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from kernel.bus.topics import BROADCAST_ROOT, EVENTS_ROOT, check_filter
from tests.deploy.conftest import INFRA
from tests.support.services import _wait, free_port, mosquitto_binary

MOSQUITTO = INFRA / "mosquitto"


def directives(path: Path) -> list[tuple[str, str]]:
    """``(key, value)`` of every configuration line; Mosquitto's format is ``key value``."""
    found = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        assert value.strip(), f"{path.name}: {line!r} has no value"
        found.append((key, value.strip()))
    return found


def test_broker_requires_authentication_and_persists():
    conf = dict(directives(MOSQUITTO / "mosquitto.conf"))
    assert conf["allow_anonymous"] == "false"
    assert conf["password_file"].startswith("/mosquitto/data/") and conf["acl_file"].startswith("/mosquitto/data/")
    assert conf["persistence"] == "true" and conf["persistence_location"] == "/mosquitto/data/"
    assert conf["listener"] == "1883"


def test_tls_and_websockets_listeners():
    tls = directives(MOSQUITTO / "tls.conf")
    assert tls[0] == ("listener", "8883")
    assert {k for k, _ in tls} >= {"cafile", "certfile", "keyfile", "tls_version"}
    assert directives(MOSQUITTO / "websockets.conf") == [("listener", "9001"), ("protocol", "websockets")]


def test_acl_grants_the_kernel_its_topics_and_others_read_only():
    users: dict[str, list[tuple[str, str]]] = {}
    current = None
    for key, value in directives(MOSQUITTO / "acl"):
        if key == "user":
            current = value
            users[current] = []
            continue
        assert key == "topic" and current is not None, f"unexpected ACL line {key} {value}"
        access, _, pattern = value.partition(" ")
        assert access in ("read", "write", "readwrite") and pattern, value
        check_filter(pattern.replace("$SYS", "SYS"))
        users[current].append((access, pattern))
    kernel = dict((p, a) for a, p in users["taylordash"])
    assert kernel[f"{EVENTS_ROOT}/#"] == "readwrite" and kernel[f"{BROADCAST_ROOT}/#"] == "readwrite"
    assert all(access == "read" for access, _ in users["observer"] + users["monitor"])
    assert ("read", "$SYS/#") in users["monitor"]


@pytest.fixture
def broker_root() -> Path:
    if mosquitto_binary() is None or shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs mosquitto and mosquitto_passwd")
    root = Path(tempfile.mkdtemp(prefix="td-deploy-mqtt-"))  # pytest's tmp dirs are closed to other users
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_websockets_listener_through_the_entrypoint(broker_root: Path):
    port, ws_port = free_port(), free_port()
    env = {
        **os.environ,
        "MOSQUITTO_CONFIG_DIR": str(MOSQUITTO),
        "MOSQUITTO_DATA_DIR": str(broker_root / "data"),
        "MOSQUITTO_CERTS_DIR": str(broker_root / "no-certs"),
        "MQTT_PORT": str(port),
        "MQTT_WS_PORT": str(ws_port),
        "MOSQUITTO_BIN": str(mosquitto_binary()),
        "MQTT_USERNAME": "taylordash",
        "MQTT_PASSWORD": "kernel-secret",
    }
    log = broker_root / "broker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["/bin/sh", str(MOSQUITTO / "entrypoint.sh")], env=env, stdout=out, stderr=out)
    try:
        assert _wait("127.0.0.1", ws_port, 15), log.read_text()
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{ws_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", ws_port), timeout=10) as conn:
            conn.sendall(request.encode())
            answer = b""
            deadline = time.monotonic() + 10
            while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
        status, *headers = answer.decode(errors="replace").split("\r\n")
        assert status.startswith("HTTP/1.1 101"), answer
        assert any(h.lower() == "sec-websocket-protocol: mqtt" for h in headers), headers
        rendered = (broker_root / "data" / "mosquitto.conf").read_text()
        assert f"listener {ws_port}\nprotocol websockets" in rendered
    finally:
        proc.terminate()
        proc.wait(timeout=10)
