"""Azurite (the Azure Storage emulator, npm package ``azurite``) for tests: start once, share, stop.

``package.json``/``package-lock.json`` at the repository root pin it; ``scripts/test`` runs
``npm ci``, which puts it in ``node_modules/.bin``. Use it from any test package::

    from tests.support.azurite import azurite_connection_string  # a session fixture; importing registers it

or, outside pytest fixtures, ``with Azurite.start() as server: server.connection_string``.

Without ``node_modules/.bin/azurite`` the fixture skips the test, unless the environment sets
``REMEDIATOR_REQUIRE_AZURITE=1`` (``scripts/test`` does, so CI fails loudly instead).

One Azurite process serves the whole session (table, queue and an unused blob service, each on a
free port, in-memory persistence, run in a temporary directory). Tests isolate
themselves by name (a fresh table/queue prefix each), not by server.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin" / "azurite"
REQUIRE_ENV = "REMEDIATOR_REQUIRE_AZURITE"
# Azurite's documented development account: public, the same in every installation.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT = 60.0


class AzuriteUnavailable(RuntimeError):
    """Azurite is not installed (no node_modules/.bin/azurite) or node is missing."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Azurite:
    """A running Azurite process; ``connection_string`` points at its table and queue services."""

    def __init__(self, proc: subprocess.Popen[bytes], location: str, ports: dict[str, int], log: Path) -> None:
        self.proc = proc
        self.location = location
        self.ports = ports
        self.log = log

    @property
    def connection_string(self) -> str:
        host = "http://127.0.0.1"
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={host}:{self.ports['blob']}/{ACCOUNT};"
                f"QueueEndpoint={host}:{self.ports['queue']}/{ACCOUNT};"
                f"TableEndpoint={host}:{self.ports['table']}/{ACCOUNT};")

    @classmethod
    def start(cls, *, timeout: float = START_TIMEOUT, attempts: int = 3) -> Azurite:
        """Start Azurite on free ports and wait until they accept connections.

        Raises ``AzuriteUnavailable`` when it is not installed, ``RuntimeError`` (with Azurite's
        output) when it does not come up within ``timeout`` seconds.
        """
        if not BIN.exists():
            raise AzuriteUnavailable(f"Azurite is not installed ({BIN.relative_to(ROOT)} is missing); run "
                                     "`npm ci` at the repository root (./scripts/test does)")
        if shutil.which("node") is None:
            raise AzuriteUnavailable("Azurite needs node on PATH")
        failure = ""
        for _ in range(attempts):  # a free port can be taken between our probe and Azurite's bind
            server = cls._spawn()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if server.proc.poll() is not None:
                    break
                if all(_accepts(p) for p in server.ports.values()):
                    return server
                time.sleep(0.1)
            failure = server._output()
            exited = server.proc.poll() is not None
            server.stop()
            if not exited:
                raise RuntimeError(f"Azurite did not accept connections on {server.ports} within {timeout:.0f} s; "
                                   f"its output:\n{failure}")
        raise RuntimeError(f"Azurite exited during startup ({attempts} attempts); its output:\n{failure}")

    @classmethod
    def _spawn(cls) -> Azurite:
        ports = {"blob": _free_port(), "queue": _free_port(), "table": _free_port()}
        location = tempfile.mkdtemp(prefix="azurite-")
        log = Path(location) / "azurite.out"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN), "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--loose",
                 "--disableProductStyleUrl", "--disableTelemetry",
                 "--blobHost", "127.0.0.1", "--blobPort", str(ports["blob"]),
                 "--queueHost", "127.0.0.1", "--queuePort", str(ports["queue"]),
                 "--tableHost", "127.0.0.1", "--tablePort", str(ports["table"])],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=location,
                start_new_session=True)
        return cls(proc, location, ports, log)

    def _output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:] or "(no output)"
        except OSError:
            return "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.location, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# One server per test process, shared by every fixture that asks (several conftest files may import
# the fixture); stopped when the last user finishes, and at exit as a safety net.
_lock = threading.Lock()
_server: Azurite | None = None
_users = 0


def acquire() -> Azurite:
    global _server, _users  # noqa: PLW0603 - the process-wide shared server
    with _lock:
        if _server is None or _server.proc.poll() is not None:
            _server = Azurite.start()
            atexit.register(_server.stop)
        _users += 1
        return _server


def release() -> None:
    global _server, _users  # noqa: PLW0603
    with _lock:
        _users -= 1
        if _users <= 0 and _server is not None:
            _server.stop()
            _server = None
            _users = 0


def drop_store(connection_string: str, prefix: str) -> None:
    """Delete the tables and the queue of the ``AzureStore`` named ``prefix`` (the names its module
    docstring lists), so that a test leaves the shared Azurite as it found it."""
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

    with TableServiceClient.from_connection_string(connection_string) as service:
        for name in ("remediations", "dedup", "locks", "audit", "flags", "counters", "inbox"):
            service.delete_table(prefix + name)
    with QueueClient.from_connection_string(connection_string, f"{prefix}-jobs") as queue:
        queue.delete_queue()


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """A connection string to a running Azurite (tables + queues); skip or fail when unavailable."""
    try:
        server = acquire()
    except AzuriteUnavailable as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(missing)
    try:
        yield server.connection_string
    finally:
        release()
