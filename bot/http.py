"""HTTP adapters: Slack requests into bolt, and ``remediator serve``'s local server.

``to_bolt_request(body, headers, query)`` is the whole adapter (Azure Functions uses it too):
the raw body as text (the signature covers exactly those bytes), and every incoming
``x-slack-bolt-*`` header dropped, because bolt reads ``x-slack-bolt-lazy-only`` /
``x-slack-bolt-lazy-function-name`` from headers the signature does not cover.

``serve(engine, settings, host, port)`` runs the local endpoints on the standard library's
``ThreadingHTTPServer`` (plus a worker thread that runs the engine's jobs and sweeps):

=============================================  ==================================================
``POST /slack/events`` (``/api/slack/events``)  Slack interactivity and slash commands → bolt
``POST /api/findings`` (``/findings``)         findings in any payload shape (``parse_bytes``) →
                                               ``engine.ingest``; answers Event Grid's
                                               subscription validation (``validationResponse``)
``OPTIONS /api/findings``                      the CloudEvents webhook validation handshake
``GET /health`` (``/api/health``)              ``{"ok": true, "paused": …}``
=============================================  ==================================================
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.error import BoltError

from bot.app import ApprovalEngine, build_app

if TYPE_CHECKING:
    from remediator.config import Settings
    from remediator.model import Record

# bolt's types are re-exported: callers outside bot/ (function_app, tests) must not import slack_bolt
__all__ = [
    "App", "BoltRequest", "BoltResponse", "LocalServer", "ServingEngine", "dispatch", "event_grid_validation",
    "ingest", "serve", "strip_bolt_headers", "to_bolt_request",
]

log = logging.getLogger("bot.http")

SLACK_PATHS = frozenset({"/slack/events", "/api/slack/events"})
INGEST_PATHS = frozenset({"/findings", "/api/findings"})
HEALTH_PATHS = frozenset({"/health", "/api/health"})
SLACK_MAX_BODY = 1024 * 1024  # Slack's payloads are small; refuse anything larger unread
INGEST_MAX_BODY = 64 * 1024 * 1024
DRAIN_MAX = 8 * 1024 * 1024  # an oversized body up to this is read and dropped before the 413
BOLT_HEADER_PREFIX = "x-slack-bolt-"
EVENT_GRID_VALIDATION = "microsoft.eventgrid.subscriptionvalidationevent"


class ServingEngine(ApprovalEngine, Protocol):
    """The engine as the local server uses it: Slack's needs plus ingest and the worker loop."""

    def ingest(self, records: Sequence[Record], *, source: str = ...) -> Sequence[Any]: ...
    def work(self, *, max_jobs: int | None = None) -> int: ...
    def sweep(self) -> int: ...


# --- the adapter ---------------------------------------------------------------------------------


def strip_bolt_headers(headers: Mapping[str, str | Sequence[str]]) -> dict[str, str | Sequence[str]]:
    """The headers without any ``x-slack-bolt-*`` (internal markers only our own code may set)."""
    return {k: v for k, v in headers.items() if not k.lower().startswith(BOLT_HEADER_PREFIX)}


def to_bolt_request(body: bytes | str, headers: Mapping[str, str | Sequence[str]],
                    query: str | Mapping[str, str | Sequence[str]] | None = None) -> BoltRequest:
    """A ``BoltRequest`` from the raw body (decoded as UTF-8, never ``str(bytes)``) and safe headers."""
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    clean = {k: (v if isinstance(v, str) else list(v)) for k, v in strip_bolt_headers(headers).items()}
    return BoltRequest(body=text, query=query if query else None, headers=clean)  # type: ignore[arg-type]


def dispatch(app: App, body: bytes | str, headers: Mapping[str, str | Sequence[str]],
             query: str | Mapping[str, str | Sequence[str]] | None = None) -> BoltResponse:
    """Convert, dispatch, return bolt's response.

    A body bolt cannot even parse (not UTF-8, or not JSON under a JSON content type) is refused
    with 400 before any listener runs: bolt parses before it verifies the signature, and such a
    body can never be a signed Slack request.
    """
    try:
        request = to_bolt_request(body, headers, query)
    except (UnicodeDecodeError, ValueError, BoltError):
        return BoltResponse(status=400, body={"error": "invalid request"})
    return app.dispatch(request)


# --- findings ingest -----------------------------------------------------------------------------


def event_grid_validation(body: bytes) -> dict[str, str] | None:
    """``{"validationResponse": code}`` for an Event Grid subscription-validation event, else None."""
    if b"validationCode" not in body and b"validationcode" not in body.lower():
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    events = doc if isinstance(doc, list) else [doc]
    for event in events:
        if not isinstance(event, dict):
            continue
        etype = str(event.get("eventType") or event.get("type") or "").lower()
        data = event.get("data")
        if etype == EVENT_GRID_VALIDATION and isinstance(data, dict) and isinstance(data.get("validationCode"), str):
            return {"validationResponse": data["validationCode"]}
    return None


def ingest(engine: ServingEngine, body: bytes, *, source: str = "http") -> tuple[int, dict[str, Any]]:
    """Parse a findings payload of any shape and hand it to the engine: (status, JSON answer)."""
    from remediator.errors import PayloadError  # noqa: PLC0415 (keeps bot.http light to import)
    from remediator.findings import parse_bytes  # noqa: PLC0415

    validation = event_grid_validation(body)
    if validation is not None:
        return 200, validation
    try:
        records = parse_bytes(body, source=source)
    except PayloadError as exc:
        return 400, {"error": str(exc)}
    results = engine.ingest(records, source=source)
    outcomes = Counter(str(getattr(r, "outcome", None) or getattr(r, "status", None) or "accepted") for r in results)
    return 202, {"records": len(records), "results": dict(sorted(outcomes.items()))}


# --- the local server ----------------------------------------------------------------------------


class LocalServer:
    """The endpoints above on ``host:port`` (port 0 picks a free one); ``start()``/``stop()`` or ``with``.

    ``worker=True`` also runs a thread that calls ``engine.work()`` and, every ``sweep_every``
    seconds, ``engine.sweep()`` (expiry and reminders). ``ingest_token``, when set, is required
    as ``Authorization: Bearer <token>`` on the ingest endpoint (Slack's endpoint is protected by
    the signature instead).
    """

    def __init__(self, engine: ServingEngine, settings: Settings, host: str = "127.0.0.1", port: int = 3000, *,
                 app: App | None = None, worker: bool = True, ingest_token: str | None = None,
                 poll_interval: float = 0.5, sweep_every: float = 30.0) -> None:
        self.engine = engine
        self.settings = settings
        self.app = app or build_app(engine, settings)
        self.ingest_token = ingest_token
        self.poll_interval = poll_interval
        self.sweep_every = sweep_every
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self.httpd = _Server((host, port), Handler)
        self._worker = worker

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        t = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="remediator-http", daemon=True)
        t.start()
        self._threads.append(t)
        if self._worker:
            w = threading.Thread(target=self.run_worker, name="remediator-worker", daemon=True)
            w.start()
            self._threads.append(w)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_worker(self) -> None:
        """Jobs until stopped: work while there is work, sweep now and then, never die on an error."""
        import time  # noqa: PLC0415

        next_sweep = 0.0
        while not self._stop.is_set():
            done = 0
            try:
                if time.monotonic() >= next_sweep:
                    self.engine.sweep()
                    next_sweep = time.monotonic() + self.sweep_every
                done = self.engine.work(max_jobs=50)
            except Exception:
                log.exception("worker iteration failed; continuing")
            if not done:
                self._stop.wait(self.poll_interval)

    # --- request handling (called from handler threads) -----------------------------------------

    def authorised_ingest(self, headers: Mapping[str, str]) -> bool:
        if not self.ingest_token:
            return True
        given = headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.ingest_token}".encode())

    def health(self) -> dict[str, Any]:
        try:
            paused = self.engine.paused()
        except Exception:
            log.exception("health: engine.paused() failed")
            return {"ok": False}
        return {"ok": True, "paused": paused}


def serve(engine: ServingEngine, settings: Settings, host: str = "127.0.0.1", port: int = 3000, *,
          worker: bool = True, ingest_token: str | None = None,
          ready: Callable[[str], None] | None = None) -> None:
    """Run the local endpoints (and the worker) until interrupted; ``ready(url)`` once listening."""
    server = LocalServer(engine, settings, host, port, worker=worker, ingest_token=ingest_token).start()
    if ready is not None:
        ready(server.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 resets a burst of clicks


class _Handler(BaseHTTPRequestHandler):
    server_owner: LocalServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _read(self, limit: int) -> bytes | None:
        """The body, or None after answering 400 (no usable length) / 413 (over ``limit``).

        An oversized body of up to ``DRAIN_MAX`` bytes is read and dropped first, so the client
        gets the 413 instead of a connection reset while it is still sending.
        """
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self._send(400, {"error": "bad Content-Length"}, close=True)
            return None
        if length > limit:
            if length <= DRAIN_MAX:
                while length > 0:
                    chunk = self.rfile.read(min(length, 64 * 1024))
                    if not chunk:
                        break
                    length -= len(chunk)
            self._send(413, {"error": f"body over {limit} bytes"}, close=True)
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None, *, close: bool = False) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            ctype = "application/json; charset=utf-8"
        else:
            data = str(body or "").encode()
            ctype = "text/plain; charset=utf-8"
        extra = dict(headers or {})
        ctype = extra.pop("content-type", ctype)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra.items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path in HEALTH_PATHS:
            health = self.server_owner.health()
            self._send(200 if health.get("ok") else 503, health)
        else:
            self._send(404, {"error": "not found"})

    def do_OPTIONS(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        origin = self.headers.get("WebHook-Request-Origin")
        if path in INGEST_PATHS and origin:
            self._send(200, "", {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST"})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        try:
            self._post()
        except Exception:
            log.exception("request to %s failed", self.path)
            self._send(500, {"error": "internal error; see the server log"}, close=True)

    def _post(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        owner = self.server_owner
        if path in SLACK_PATHS:
            body = self._read(SLACK_MAX_BODY)
            if body is None:
                return
            resp = dispatch(owner.app, body, self._headers(), parts.query or None)
            self._send(resp.status, resp.body, resp.first_headers_without_set_cookie())
        elif path in INGEST_PATHS:
            if not owner.authorised_ingest(self._headers()):
                self._send(401, {"error": "missing or wrong ingest token"}, close=True)
                return
            body = self._read(INGEST_MAX_BODY)
            if body is None:
                return
            try:
                status, answer = ingest(owner.engine, body, source="http")
            except Exception:
                log.exception("ingest failed")
                status, answer = 500, {"error": "ingest failed; see the server log"}
            self._send(status, answer)
        else:
            self._send(404, {"error": "not found"})
