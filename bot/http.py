"""``remediator serve``'s HTTP side: a small WSGI app on waitress, plus the worker thread.

=============================================  ==================================================
``POST /slack/events`` (``/api/slack/events``)  Slack interactivity and slash commands →
                                               ``bot.endpoint.SlackEndpoint`` (signature, replay
                                               and shape checked on the raw bytes) → bolt
``POST /api/findings`` (``/findings``)         findings in any payload shape (``parse_bytes``) →
                                               ``engine.ingest``; needs ``Authorization: Bearer
                                               <REMEDIATOR_INGEST_TOKEN>`` (constant-time
                                               compare), 404 when serving with ingest off;
                                               answers Event Grid's subscription validation
``OPTIONS /api/findings``                      the CloudEvents webhook validation handshake
                                               (echoes the origin, stores nothing; no token)
``GET /health`` (``/api/health``)              ``{"ok": true, "paused": …}``
=============================================  ==================================================

Why waitress (``requirements.txt``): the standard library's ``http.server`` has no socket timeout
and a thread per connection, so a client that sends headers and ``Content-Length: 1000`` and then
three bytes held a thread forever. Waitress reads requests on one event loop and hands a request
to its bounded thread pool only once it is complete, so slow clients hold no worker; a connection
idle for ``channel_timeout`` seconds is closed (checked every ``cleanup_interval``); at most
``connection_limit`` connections are open; bodies over ``max_request_body_size`` and headers over
``max_request_header_size`` are answered 413/431 before the app runs. ``LIMITS`` holds the values.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt import App, BoltRequest, BoltResponse
from waitress import wasyncore
from waitress.server import create_server

from bot.app import ApprovalEngine, build_app
from bot.endpoint import MAX_BODY as SLACK_MAX_BODY
from bot.endpoint import SlackEndpoint, build_endpoint, strip_bolt_headers, to_bolt_request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from remediator.config.settings import Settings
    from remediator.findings.model import Record
    from remediator.lifecycle.store import Store

# bolt's types are re-exported: callers outside bot/ (function_app, tests) must not import slack_bolt
__all__ = [
    "LIMITS", "App", "BoltRequest", "BoltResponse", "Endpoints", "LocalServer", "ServerLimits", "ServingEngine",
    "event_grid_validation", "ingest", "serve", "strip_bolt_headers", "to_bolt_request",
]

log = logging.getLogger("bot.http")

SLACK_PATHS = frozenset({"/slack/events", "/api/slack/events"})
INGEST_PATHS = frozenset({"/findings", "/api/findings"})
HEALTH_PATHS = frozenset({"/health", "/api/health"})
INGEST_MAX_BODY = 64 * 1024 * 1024
EVENT_GRID_VALIDATION = "microsoft.eventgrid.subscriptionvalidationevent"
MIN_TOKEN_LENGTH = 16
NO_KEY = ("findings ingest needs a token: set REMEDIATOR_INGEST_TOKEN (at least 16 characters, for example "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) and send it as "
            "`Authorization: Bearer <token>`, or serve with --no-ingest (Slack and health only)")


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """What one client can take from the server (waitress's adjustments of the same names)."""

    threads: int = 8  # the worker pool: requests handled at once; more wait in waitress's queue
    connection_limit: int = 500  # open connections; past it new ones wait in the listen backlog
    channel_timeout: int = 15  # seconds a connection may sit idle (mid-request too) before it is closed
    cleanup_interval: int = 5  # how often idle connections are looked for (seconds)
    max_request_header_size: int = 64 * 1024  # 431 past it
    max_request_body_size: int = INGEST_MAX_BODY  # 413 past it (the Slack route allows 1 MiB, see bot.endpoint)
    backlog: int = 128  # the listen queue: a burst of clicks is queued, not reset


LIMITS = ServerLimits()


class ServingEngine(ApprovalEngine, Protocol):
    """The engine as the local server uses it: Slack's needs plus ingest, the worker loop and its store."""

    store: Store

    def ingest(self, records: Sequence[Record], *, source: str = ...) -> Sequence[Any]: ...
    def work(self, *, max_jobs: int | None = None) -> int: ...
    def sweep(self) -> int: ...


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
    from remediator.findings.parse import parse_bytes  # noqa: PLC0415

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


def ingest_token_problem(token: str | None) -> str | None:
    """Why ``token`` cannot protect ingest (missing, short, blank), or None."""
    if not token or not token.strip():
        return NO_KEY
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        return f"REMEDIATOR_INGEST_TOKEN must be at least {MIN_TOKEN_LENGTH} characters without spaces"
    return None


# --- the WSGI app ----------------------------------------------------------------------------------


Answer = tuple[int, bytes, dict[str, str]]


def _json(status: int, doc: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return status, json.dumps(doc).encode(), {"Content-Type": "application/json; charset=utf-8", **(headers or {})}


class Endpoints:
    """The WSGI app: the routes in the module docstring (``wsgi`` is the WSGI environ); no exception
    reaches the server.
    reaches the server.

    ``ingest_token`` is required unless ``ingest`` is False (then the ingest routes answer 404):
    the server refuses to exist with an open ingest endpoint.
    """

    def __init__(self, engine: ServingEngine, slack: SlackEndpoint, *, ingest_token: str | None,
                 ingest: bool = True) -> None:
        if ingest and (problem := ingest_token_problem(ingest_token)):
            raise ValueError(problem)
        self.engine = engine
        self.slack = slack
        self.ingest_enabled = ingest
        self._expected = f"Bearer {ingest_token}".encode() if ingest and ingest_token else None

    def __call__(self, wsgi: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(wsgi.get("REQUEST_METHOD") or "GET").upper()
        path = str(wsgi.get("PATH_INFO") or "/").rstrip("/") or "/"
        try:
            status, body, headers = self.route(method, path, wsgi)
        except Exception:
            log.exception("%s %s failed", method, path[:200])
            status, body, headers = _json(500, {"error": "internal error; see the server log"})
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        start_response(f"{status} {phrase}", [*headers.items(), ("Content-Length", str(len(body)))])
        return [body]

    def authorised_ingest(self, headers: Mapping[str, str]) -> bool:
        """True only for ``Authorization: Bearer <the ingest token>`` (constant-time compare)."""
        if self._expected is None:
            return False
        given = headers.get("authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self._expected)

    def health(self) -> dict[str, Any]:
        try:
            paused = self.engine.paused()
        except Exception:
            log.exception("health: engine.paused() failed")
            return {"ok": False}
        return {"ok": True, "paused": paused}

    def route(self, method: str, path: str, wsgi: WSGIEnvironment) -> Answer:
        headers = _headers(wsgi)
        if path in HEALTH_PATHS and method in {"GET", "HEAD"}:
            health = self.health()
            return _json(200 if health.get("ok") else 503, health)
        if path in SLACK_PATHS and method == "POST":
            body = _body(wsgi, SLACK_MAX_BODY)
            if body is None:
                return _json(413, {"error": f"body over {SLACK_MAX_BODY} bytes"})
            query = str(wsgi.get("QUERY_STRING") or "") or None
            resp = self.slack.handle(body, headers, query)
            out = dict(resp.first_headers_without_set_cookie())
            ctype = next((out.pop(k) for k in list(out) if k.lower() == "content-type"), "text/plain; charset=utf-8")
            return resp.status, str(resp.body or "").encode("utf-8"), {**out, "Content-Type": ctype}
        if path in INGEST_PATHS and method in {"POST", "OPTIONS"}:
            return self._ingest(method, wsgi, headers)
        return _json(404, {"error": "not found"})

    def _ingest(self, method: str, wsgi: WSGIEnvironment, headers: Mapping[str, str]) -> Answer:
        if not self.ingest_enabled:
            return _json(404, {"error": "findings ingest is off on this server"})
        if method == "OPTIONS":  # the CloudEvents handshake: it stores nothing, and carries no custom header
            origin = headers.get("webhook-request-origin")
            if not origin:
                return _json(404, {"error": "not found"})
            return 200, b"", {"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST"}
        if not self.authorised_ingest(headers):
            return _json(401, {"error": "missing or wrong ingest token"}, {"WWW-Authenticate": "Bearer"})
        body = _body(wsgi, INGEST_MAX_BODY)
        if body is None:
            return _json(413, {"error": f"body over {INGEST_MAX_BODY} bytes"})
        try:
            status, answer = ingest(self.engine, body, source="http")
        except Exception:
            log.exception("ingest failed")
            status, answer = 503, {"error": "the findings could not be stored; retry later"}
        return _json(status, answer)


def _headers(wsgi: WSGIEnvironment) -> dict[str, str]:
    """Request headers, lower-case with dashes, from a WSGI environ."""
    out = {k[5:].replace("_", "-").lower(): str(v) for k, v in wsgi.items() if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if wsgi.get(key):
            out[key.replace("_", "-").lower()] = str(wsgi[key])
    return out


def _body(wsgi: WSGIEnvironment, limit: int) -> bytes | None:
    """The body (at most ``limit`` bytes), or None when it is longer."""
    try:
        length = int(wsgi.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit:
        return None
    stream = wsgi.get("wsgi.input")
    if stream is None or length <= 0:
        return b""
    data: bytes = stream.read(length)
    return data


# --- the local server ----------------------------------------------------------------------------


class LocalServer:
    """``Endpoints`` on ``host:port`` under waitress (port 0 picks a free one); ``start()``/``stop()`` or ``with``.

    ``worker=True`` also runs a thread that calls ``engine.work()`` and, every ``sweep_every``
    seconds, ``engine.sweep()`` (expiry and reminders). ``endpoint`` defaults to
    ``build_endpoint(app, settings, engine.store)``. ``loop_timeout``: how long the event loop waits
    for a socket before it looks at ``stop()`` again (so how long ``stop()`` can take).
    """

    def __init__(self, engine: ServingEngine, settings: Settings, host: str = "127.0.0.1", port: int = 3000, *,
                 app: App | None = None, endpoint: SlackEndpoint | None = None, worker: bool = True,
                 ingest_token: str | None = None, ingest: bool = True, limits: ServerLimits = LIMITS,
                 poll_interval: float = 0.5, sweep_every: float = 30.0, loop_timeout: float = 0.1) -> None:
        self.engine = engine
        self.settings = settings
        self.app = app or (endpoint.app if endpoint is not None else build_app(engine, settings))
        self.endpoint = endpoint or build_endpoint(self.app, settings, engine.store)
        self.endpoints = Endpoints(engine, self.endpoint, ingest_token=ingest_token, ingest=ingest)
        self.limits = limits
        self.poll_interval = poll_interval
        self.sweep_every = sweep_every
        self.loop_timeout = loop_timeout
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker = worker
        self._map: dict[int, Any] = {}
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=limits.backlog)
        self._server = create_server(self.endpoints, map=self._map, sockets=[sock], ident="remediator",
                                     expose_tracebacks=False, **asdict(limits))
        self._address = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self._address
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> LocalServer:
        t = threading.Thread(target=self._serve, name="remediator-http", daemon=True)
        t.start()
        self._threads.append(t)
        if self._worker:
            w = threading.Thread(target=self.run_worker, name="remediator-worker", daemon=True)
            w.start()
            self._threads.append(w)
        return self

    def _serve(self) -> None:
        """waitress's event loop, one poll at a time so ``stop()`` ends it from this thread."""
        try:
            while not self._stop.is_set() and self._map:
                wasyncore.loop(timeout=self.loop_timeout, map=self._map, count=1)
        finally:
            wasyncore.close_all(self._map)
            self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_worker(self) -> None:
        """Jobs until stopped: work while there is work, sweep now and then, never die on an error."""
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


def serve(engine: ServingEngine, settings: Settings, host: str = "127.0.0.1", port: int = 3000, *,
          worker: bool = True, ingest_token: str | None = None, ingest: bool = True,
          ready: Callable[[str], None] | None = None) -> None:
    """Run the local endpoints (and the worker) until interrupted; ``ready(url)`` once listening."""
    server = LocalServer(engine, settings, host, port, worker=worker, ingest_token=ingest_token,
                         ingest=ingest).start()
    if ready is not None:
        ready(server.url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
