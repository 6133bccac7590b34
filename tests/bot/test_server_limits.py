"""The local server's limits over real sockets: slow clients are cut off by the timeout while others
are served, bodies and headers over the limits are refused, the worker pool is bounded.

Bounded in time and count, loopback only: 20 slow connections, a handful of requests, a server
with a 1-second idle timeout (``ServerLimits``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.request import urlopen

import pytest

from bot.http import LIMITS, LocalServer, ServerLimits
from tests.bot.world import INGEST_TOKEN, SlackWorld

SLOW = 20


@pytest.fixture
def server(world: SlackWorld) -> Iterator[LocalServer]:
    limits = ServerLimits(threads=4, channel_timeout=1, cleanup_interval=1, max_request_body_size=256 * 1024,
                          max_request_header_size=8 * 1024)
    with LocalServer(world.engine, world.settings, port=0, endpoint=world.endpoint, worker=False,
                     ingest_token=INGEST_TOKEN, limits=limits) as srv:
        yield srv


def host_port(server: LocalServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def slow_client(server: LocalServer, path: str = "/api/findings") -> socket.socket:
    """Headers with ``Content-Length: 1000``, then three bytes, then nothing (slowloris)."""
    sock = socket.create_connection(host_port(server), timeout=10)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a".encode())
    return sock


def closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True once the server closed the connection (EOF or reset) before ``deadline``."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        if not data:
            return True
    return False


def get_health(server: LocalServer) -> int:
    with urlopen(server.url + "/health", timeout=5) as resp:
        return int(resp.status)


def test_slow_clients_are_cut_off_and_others_are_served_meanwhile(server: LocalServer) -> None:
    slow = [slow_client(server) for _ in range(SLOW)]
    try:
        started = time.monotonic()
        # more concurrent normal requests than worker threads, while the slow ones are open
        statuses: list[int] = []
        lock = threading.Lock()

        def ask() -> None:
            status = get_health(server)
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=ask) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert statuses == [200] * 12
        assert time.monotonic() - started < 1.0  # none of them waited for the slow clients
        deadline = time.monotonic() + 8  # timeout 1 s, checked every 1 s, loop poll 0.1 s
        cut = [closed_by_server(sock, deadline) for sock in slow]
        assert cut == [True] * SLOW
        assert get_health(server) == 200
    finally:
        for sock in slow:
            sock.close()


def status_of(server: LocalServer, head: str, body: bytes = b"") -> int:
    """Send a request head (and maybe some body) on a raw socket; the status of the answer."""
    with socket.create_connection(host_port(server), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_a_body_over_the_limit_is_413_before_it_is_sent(server: LocalServer) -> None:
    for path in ("/api/findings", "/slack/events"):
        head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {256 * 1024 + 1}\r\n\r\n")
        assert status_of(server, head) == 413  # answered on the headers alone; nothing buffered
    assert get_health(server) == 200


def test_the_slack_route_allows_one_mib(server: LocalServer) -> None:
    head = "POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n"
    assert status_of(server, head.format(200 * 1024), b"x" * (200 * 1024)) == 401  # read, refused as unsigned


def test_headers_over_the_limit_are_431(server: LocalServer) -> None:
    head = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: {'p' * 16 * 1024}\r\n\r\n"
    assert status_of(server, head) == 431
    assert get_health(server) == 200


def test_the_default_limits() -> None:
    assert (LIMITS.threads, LIMITS.channel_timeout, LIMITS.connection_limit) == (8, 15, 500)
    assert LIMITS.max_request_body_size == 64 * 1024 * 1024
    assert LIMITS.max_request_header_size == 64 * 1024
