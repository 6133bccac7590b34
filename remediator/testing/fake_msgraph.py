"""``FakeMsGraph``: a local Microsoft Graph (v1.0) for tests: a real HTTP server on 127.0.0.1, port 0.

Not ``remediator.testing.fake_graph`` (FakeArm's Azure *Resource* Graph). The real
``remediator.azure.directory.DirectoryClient`` (azure-core's pipeline, its real bearer-token policy
with the https check off) talks to it::

    with FakeMsGraph() as graph:
        alice = graph.add_user("Alice Example", upn="alice@contoso.example")
        client = graph.client()                     # DirectoryClient wired to the fake
        client.get_by_ids([alice])                  # {alice: Principal(kind="user", …)}
        assert graph.calls("getByIds") == 1

Seeding: ``load`` (a Graph answer, e.g. ``remediator/samples/directory.json``), ``add_user``,
``add_group``, ``add_service_principal`` (``managed_identity=True``: a managed
identity, ``servicePrincipalType`` ``ManagedIdentity``) each return the object id (a new GUID unless
given); ``add_object`` stores any directory object document as is.

Authentication, as Graph answers it: every request needs ``Authorization: Bearer <token>``; none →
401 ``InvalidAuthenticationToken`` ("Access token is empty."), a token the fake did not issue
(``FAKE_TOKEN`` or ``principal_token(...)`` of ``remediator.testing``; more with ``accept_token``) →
401 ``InvalidAuthenticationToken`` ("Access token validation failure."). ``graph.deny(token)`` answers
403 ``Authorization_RequestDenied`` ("Insufficient privileges to complete the operation.", what Graph
says when the application permission is missing) to that token.

Routes (a table, ``ROUTES``: method, path pattern, handler; ``graph.route(method, pattern, handler)``
adds one to this instance, e.g. ``servicePrincipals/{id}/appRoleAssignments``). A handler gets the
fake and a ``Call`` (method, path, match, query, body, headers) and returns a ``Reply`` or raises
one. Served now:

* ``POST /v1.0/directoryObjects/getByIds`` ({"ids": [...], "types": [...]}): the stored objects among
  ``ids`` of the ``types`` (case-insensitive; none given: every type), in the documented shape
  (``@odata.context``, ``value`` with ``@odata.type`` per object); at most 1000 ids (more → 400
  ``Request_BadRequest``), an id that is not a GUID → 400 ``Request_BadRequest`` (Invalid object identifier);
* ``GET /v1.0/{users|groups|servicePrincipals|directoryObjects}/{id}``: the object, 404 ``Request_ResourceNotFound``
  otherwise.

Faults: ``fail_next(status, times=, code=)`` answers errors (a 503, a 429 with ``Retry-After``),
``latency`` seconds before every answer (slower than the client's timeout: "slow"),
``unreachable()``/``reachable()`` close and reopen the listening socket on the same port (connection
refused in between). Recording: ``requests`` (``GraphCall``: method, path, body, status),
``calls(name)`` counts requests whose path ends with ``name``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from remediator.azure.directory import MAX_IDS, PUBLIC_GRAPH, DirectoryClient, is_object_id
from remediator.testing.auth import FAKE_TOKEN, FakeCredential

GRAPH_SCOPE = PUBLIC_GRAPH + "/.default"
TYPE_COLLECTIONS = {"users": "user", "groups": "group", "servicePrincipals": "servicePrincipal"}


class Reply(Exception):
    """An answer: status, JSON body, headers (raise it from a handler to answer early)."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def error(status: int, code: str, message: str) -> Reply:
    """Graph's error shape: ``{"error": {"code", "message", "innerError": {"request-id", "date"}}}``."""
    inner = {"request-id": str(uuid.uuid4()), "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
    return Reply(status, {"error": {"code": code, "message": message, "innerError": inner}})


@dataclass(frozen=True, slots=True)
class Call:
    """One request as a handler sees it."""

    method: str
    path: str
    match: re.Match[str]
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class GraphCall:
    """One request as the fake recorded it."""

    method: str
    path: str
    body: Any
    status: int
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


Handler = Callable[["FakeMsGraph", Call], Reply]


def _get_by_ids(graph: FakeMsGraph, call: Call) -> Reply:
    body = call.body if isinstance(call.body, dict) else None
    wanted = body.get("ids") if body is not None else None
    if not isinstance(wanted, list) or not all(isinstance(i, str) for i in wanted):
        raise error(400, "Request_BadRequest", "The request body must hold 'ids', a collection of strings.")
    if len(wanted) > MAX_IDS:
        raise error(400, "Request_BadRequest", f"Too many ids: {len(wanted)}; at most {MAX_IDS} are allowed.")
    bad = next((i for i in wanted if not is_object_id(i)), None)
    if bad is not None:
        raise error(400, "Request_BadRequest", f"Invalid object identifier '{bad}'.")
    types = body.get("types") if body is not None else None
    allowed = {str(t).lower() for t in types} if isinstance(types, list) and types else None
    out = []
    with graph._lock:
        for oid in wanted:
            obj = graph._objects.get(oid.lower())
            kind = str((obj or {}).get("@odata.type", "")).rsplit(".", 1)[-1].lower()
            if obj is not None and (allowed is None or kind in allowed or "directoryobject" in allowed):
                out.append(dict(obj))
    return Reply(200, {"@odata.context": f"{graph.base_url}/v1.0/$metadata#directoryObjects", "value": out})


def _get_object(graph: FakeMsGraph, call: Call) -> Reply:
    collection, oid = call.match.group("collection"), call.match.group("id").lower()
    with graph._lock:
        obj = graph._objects.get(oid)
    kind = str((obj or {}).get("@odata.type", "")).rsplit(".", 1)[-1]
    if obj is None or (collection != "directoryObjects" and TYPE_COLLECTIONS.get(collection) != kind):
        raise error(404, "Request_ResourceNotFound", f"Resource '{oid}' does not exist or one of its queried "
                                                     "reference-property objects are not present.")
    return Reply(200, {"@odata.context": f"{graph.base_url}/v1.0/$metadata#{collection}/$entity", **obj})


ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("POST", re.compile(r"^/v1\.0/directoryObjects/getByIds$", re.IGNORECASE), _get_by_ids),
    ("GET", re.compile(r"^/v1\.0/(?P<collection>users|groups|servicePrincipals|directoryObjects)/(?P<id>[^/]+)$"),
     _get_object),
)


class FakeMsGraph:
    """A local fake of Microsoft Graph; see the module docstring."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._objects: dict[str, dict[str, Any]] = {}
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = list(ROUTES)
        self._tokens: set[str] = {FAKE_TOKEN}
        self._denied: set[str] = set()
        self._failures: list[list[Any]] = []  # [status, body, headers, times]
        self._requests: list[GraphCall] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._address: tuple[str, int] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeMsGraph:
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            graph = fake

        self._server = ThreadingHTTPServer(self._address or ("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._address = (str(host), int(port))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="FakeMsGraph", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeMsGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unreachable(self) -> None:
        """Close the listening socket (the address is kept): requests meet connection refused."""
        self.stop()

    def reachable(self) -> None:
        """Listen again on the same address."""
        self.start()

    @property
    def base_url(self) -> str:
        if self._address is None:
            raise RuntimeError("FakeMsGraph is not started (use `with FakeMsGraph() as graph:` or graph.start())")
        host, port = self._address
        return f"http://{host}:{port}"

    def client(self, *, credential: Any = None, **kwargs: Any) -> DirectoryClient:
        """A ``DirectoryClient`` for this fake: endpoint the fake, scope the global Graph's, azure-core's
        bearer policy over ``credential`` (a ``FakeCredential`` unless given; it records the scopes it
        was asked for), no retries. ``kwargs`` override (``timeout=``, ``batch_size=``, ``retry_total=``)."""
        from remediator.testing.fake_arm import HttpBearerPolicy  # noqa: PLC0415

        credential = credential if credential is not None else FakeCredential()
        scope = kwargs.pop("scope", GRAPH_SCOPE)
        options: dict[str, Any] = {"retry_total": 0, "authentication_policy": HttpBearerPolicy(credential, scope)}
        options.update(kwargs)
        return DirectoryClient(credential, endpoint=self.base_url, scope=scope, **options)

    # -- seeding --------------------------------------------------------------------------------
    def add_object(self, obj: Mapping[str, Any]) -> str:
        """Store a directory object document (``id`` and ``@odata.type`` required); its id."""
        oid = str(obj.get("id") or "").lower()
        if not is_object_id(oid) or not str(obj.get("@odata.type") or "").startswith("#microsoft.graph."):
            raise ValueError("a directory object needs an 'id' (GUID) and an '@odata.type' (#microsoft.graph.user …)")
        with self._lock:
            self._objects[oid] = {**obj, "id": oid}
        return oid

    def load(self, objects: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[str]:
        """Store directory objects: a list, or a Graph answer (``{"value": [...]}``, e.g.
        ``remediator/samples/directory.json``); their ids."""
        items = objects.get("value", []) if isinstance(objects, Mapping) else objects
        return [self.add_object(o) for o in items]

    def add_user(self, display_name: str, *, upn: str | None = None, mail: str | None = None,
                 object_id: str | None = None) -> str:
        upn = upn or "".join(c for c in display_name.lower() if c.isalnum()) + "@contoso.example"
        return self.add_object({"@odata.type": "#microsoft.graph.user", "id": object_id or str(uuid.uuid4()),
                                "displayName": display_name, "userPrincipalName": upn, "mail": mail,
                                "accountEnabled": True})

    def add_group(self, display_name: str, *, mail: str | None = None, object_id: str | None = None) -> str:
        return self.add_object({"@odata.type": "#microsoft.graph.group", "id": object_id or str(uuid.uuid4()),
                                "displayName": display_name, "mail": mail, "securityEnabled": True,
                                "mailEnabled": mail is not None})

    def add_service_principal(self, display_name: str, *, app_id: str | None = None, managed_identity: bool = False,
                              object_id: str | None = None) -> str:
        return self.add_object({"@odata.type": "#microsoft.graph.servicePrincipal",
                                "id": object_id or str(uuid.uuid4()), "displayName": display_name,
                                "appId": app_id or str(uuid.uuid4()),
                                "servicePrincipalType": "ManagedIdentity" if managed_identity else "Application",
                                "accountEnabled": True})

    def objects(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._objects.items()}

    # -- routes, tokens, faults -----------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve ``method`` requests whose path (after ``/v1.0`` or ``/beta``, e.g.
        ``/v1.0/servicePrincipals/(?P<id>[^/]+)/appRoleAssignments``) matches ``pattern`` with ``handler``;
        checked before the built-in routes."""
        with self._lock:
            self._routes.insert(0, (method.upper(), re.compile(pattern if pattern.startswith("^") else f"^{pattern}$"),
                                    handler))

    def accept_token(self, token: str) -> None:
        with self._lock:
            self._tokens.add(token)

    def deny(self, token: str = FAKE_TOKEN) -> None:
        """Answer 403 ``Authorization_RequestDenied`` to requests carrying ``token`` (no permission)."""
        with self._lock:
            self._denied.add(token)

    def fail_next(self, status: int = 503, *, times: int = 1, code: str = "ServiceUnavailable",
                  retry_after: float | None = None) -> None:
        reply = error(status, code, f"FakeMsGraph: injected {status}")
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        with self._lock:
            self._failures.append([status, reply.body, headers, times])

    @property
    def requests(self) -> list[GraphCall]:
        with self._lock:
            return list(self._requests)

    def calls(self, name: str = "") -> int:
        """How many requests reached the fake whose path ends with ``name`` (all of them for "")."""
        return sum(1 for r in self.requests if r.path.lower().endswith(name.lower()))

    # -- serving --------------------------------------------------------------------------------
    def _serve(self, method: str, path: str, query: dict[str, str], raw: bytes, headers: dict[str, str]) -> Reply:
        with self._lock:
            if self._failures:
                failure = self._failures[0]
                failure[3] -= 1
                if failure[3] <= 0:
                    self._failures.pop(0)
                return Reply(failure[0], failure[1], failure[2])
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = value[7:].strip() if value.lower().startswith("bearer ") else ""
        if not token:
            raise error(401, "InvalidAuthenticationToken", "Access token is empty.")
        with self._lock:
            known = token in self._tokens or token.startswith(FAKE_TOKEN + ":")
            denied = token in self._denied
        if not known:
            raise error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if denied:
            raise error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            raise error(400, "BadRequest", "Unable to read JSON request payload.") from None
        with self._lock:
            routes = list(self._routes)
        for verb, pattern, handler in routes:
            m = pattern.match(path)
            if m is not None and verb == method:
                return handler(self, Call(method, path, m, query, body, headers))
        if any(p.match(path) for _, p, _ in routes):
            raise error(405, "Request_BadRequest",
                        f"Specified HTTP method is not allowed for the request target: {method}")
        raise error(400, "BadRequest", f"Resource not found for the segment '{path.rsplit('/', 1)[-1]}'.")


class _Handler(BaseHTTPRequestHandler):
    graph: FakeMsGraph
    protocol_version = "HTTP/1.1"
    server_version = "FakeMsGraph/1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path).rstrip("/")
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = dict(self.headers.items())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.graph.latency > 0:
            time.sleep(self.graph.latency)
        try:
            reply = self.graph._serve(method, path, query, raw, headers)
        except Reply as r:
            reply = r
        except Exception as e:  # a bug in the fake: answer as Graph would, never hang the client
            reply = error(500, "InternalServerError", f"FakeMsGraph error: {type(e).__name__}: {e}")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self.graph._lock:
            self.graph._requests.append(GraphCall(method, path, body, reply.status, headers))
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("request-id", str(uuid.uuid4()))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its read timeout)
            self.close_connection = True
