"""Real services for the test suite: the machine's PostgreSQL and Mosquitto, or private ones.

Order of preference: an explicit URL from the environment, the service on its standard local port,
a private instance started from the binaries on this machine. When none is possible the tests that
need it skip with the reason, unless ``TD_REQUIRE_SERVICES=1`` (CI), where they fail instead.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REQUIRED = os.environ.get("TD_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (TD_REQUIRE_SERVICES=1 makes this a failure)", pytest_trace=False)
    pytest.skip(reason)


def _wait(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(host, port):
            return True
        time.sleep(0.1)
    return False


def _start_private_postgres() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = candidates[-1]
    if not initdb or not os.path.exists(initdb):
        return None
    bindir = Path(initdb).parent
    root = Path(tempfile.mkdtemp(prefix="td-pg-"))
    port = free_port()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [*prefix, str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-w",
            "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    atexit.register(
        lambda: subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True
        )
    )
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"


def postgres_server_url() -> str | None:
    """A SQLAlchemy URL of a PostgreSQL server the tests may create databases on."""
    explicit = os.environ.get("TD_TEST_DATABASE_URL")
    if explicit:
        return explicit
    if reachable("127.0.0.1", 5432):
        return "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    return _start_private_postgres()


def mosquitto_address() -> tuple[str, int] | None:
    """``(host, port)`` of an MQTT broker the tests may use."""
    explicit = os.environ.get("TD_TEST_MQTT_URL")
    if explicit:
        from urllib.parse import urlsplit

        parts = urlsplit(explicit)
        return parts.hostname or "127.0.0.1", parts.port or 1883
    if reachable("127.0.0.1", 1883):
        return "127.0.0.1", 1883
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        return None
    port = free_port()
    conf = Path(tempfile.mkdtemp(prefix="td-mqtt-")) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(proc.terminate)
    return ("127.0.0.1", port) if _wait("127.0.0.1", port, 5) else None


def mosquitto_binary() -> str | None:
    """Path of the ``mosquitto`` broker binary, if installed."""
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)


class PrivateMosquitto:
    """A Mosquitto of the test's own on a free port, with persistence, which a test may stop, kill
    and start again (the machine's broker is shared and must never be restarted)."""

    def __init__(self, config: str = "", port: int | None = None) -> None:
        binary = mosquitto_binary()
        if binary is None:
            unavailable("no mosquitto binary to start a private broker")
        self.binary = str(binary)
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="td-mqtt-"))
        self.log = self.root / "mosquitto.log"
        self.conf = self.root / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self.root}/\nautosave_interval 1\n"
            f"log_dest file {self.log}\n{config}\n"
        )
        if os.geteuid() == 0:  # mosquitto drops root for its own user, which must own the files
            with contextlib.suppress(KeyError, LookupError, OSError):
                shutil.chown(self.root, "mosquitto")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> PrivateMosquitto:
        errors = self.root / "stderr.log"
        with errors.open("w") as err:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=err)
        atexit.register(self.stop)
        if not _wait("127.0.0.1", self.port, 10):
            raise RuntimeError(f"private mosquitto did not start: {errors.read_text()}")
        return self

    def close(self) -> None:
        """Stop for good and remove the broker's files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
