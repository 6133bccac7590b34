"""The fakes' HTTP servers: a ``ThreadingHTTPServer`` on a local port (0: any free one) served by a daemon
thread, and its orderly shutdown. FakeArm and FakeMsGraph start and stop theirs through these."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP_POLL = 0.01  # seconds: how often the server thread checks for shutdown() (how long stop() can wait)


def serve(handler: type[BaseHTTPRequestHandler], *, name: str,
          address: tuple[str, int] = ("127.0.0.1", 0)) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """A server for ``handler`` at ``address``, already serving on a daemon thread called ``name``."""
    server = ThreadingHTTPServer(address, handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": STOP_POLL}, name=name,
                              daemon=True)
    thread.start()
    return server, thread


def shut(server: ThreadingHTTPServer, thread: threading.Thread | None) -> None:
    """Stop ``server`` serving, close its socket and wait (up to 5 s) for its thread."""
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)
