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
  otherwise;
* ``GET /v1.0/servicePrincipals`` (``$filter=appId eq '…'`` or none), ``GET /v1.0/servicePrincipals/{id}/
  appRoleAssignments`` (the app roles it holds) and ``…/appRoleAssignedTo`` (those granted for its app roles):
  ``page_size`` objects a page, the rest behind ``@odata.nextLink`` (``$skiptoken``);
* ``DELETE /v1.0/servicePrincipals/{id}/appRoleAssignments/{assignment}`` (also ``…/appRoleAssignedTo/{assignment}``
  of the resource): 204, 404 ``Request_ResourceNotFound`` when there is none;
* ``POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo`` (``principalId``, ``resourceId``, ``appRoleId``): 201 with
  the new assignment; 400 ``Request_BadRequest`` for an app role the resource does not define, a principal that
  does not exist or a ``resourceId`` other than the path's; 400 when the same assignment exists ("Permission being
  assigned already exists on the object").

Seeding app role assignments: ``add_microsoft_graph()`` adds Microsoft Graph's service principal (appId
``00000003-0000-0000-c000-000000000000``) with the app roles of ``remediator.findings.approles.TENANT_WIDE_DATA``
and returns its object id; ``assign_app_role(principal, resource, app_role_id, created=)`` an assignment (its id).
``read_only(token)``: that token reads but every write answers 403 ``Authorization_RequestDenied`` (an executor
without ``AppRoleAssignment.ReadWrite.All``).

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
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from remediator.azure.directory import MAX_IDS, PUBLIC_GRAPH, DirectoryClient, is_object_id
from remediator.testing.auth import FAKE_TOKEN, FakeCredential
from remediator.testing.serving import serve, shut

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


_SP = r"^/v1\.0/servicePrincipals/(?P<sp>[^/]+)"


def _page(graph: FakeMsGraph, call: Call, items: list[dict[str, Any]], context: str) -> Reply:
    """``items`` from ``$skiptoken`` on, ``graph.page_size`` of them, with ``@odata.nextLink`` when more remain."""
    try:
        start = int(call.query.get("$skiptoken") or 0)
    except ValueError:
        raise error(400, "Request_BadRequest", "Invalid $skiptoken.") from None
    body: dict[str, Any] = {"@odata.context": f"{graph.base_url}/v1.0/$metadata#{context}",
                            "value": items[start:start + graph.page_size]}
    if start + graph.page_size < len(items):
        query = {k: v for k, v in call.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(start + graph.page_size)
        body["@odata.nextLink"] = f"{graph.base_url}{call.path}?{urlencode(query)}"
    return Reply(200, body)


_APP_ID_FILTER = re.compile(r"^\s*appId\s+eq\s+'(?P<app>[^']*)'\s*$", re.IGNORECASE)


def _list_service_principals(graph: FakeMsGraph, call: Call) -> Reply:
    wanted = call.query.get("$filter")
    m = _APP_ID_FILTER.match(wanted) if wanted is not None else None
    if wanted is not None and m is None:
        raise error(400, "Request_UnsupportedQuery", f"FakeMsGraph: unsupported filter {wanted!r} (appId eq '…')")
    with graph._lock:
        found = [dict(o) for o in graph._objects.values() if o.get("@odata.type") == "#microsoft.graph.servicePrincipal"
                 and (m is None or str(o.get("appId") or "").lower() == m.group("app").lower())]
    return _page(graph, call, found, "servicePrincipals")


def _service_principal(graph: FakeMsGraph, sp: str) -> dict[str, Any]:
    obj = graph._objects.get(sp.lower())
    if obj is None or obj.get("@odata.type") != "#microsoft.graph.servicePrincipal":
        raise error(404, "Request_ResourceNotFound", f"Resource '{sp}' does not exist or one of its queried "
                                                    "reference-property objects are not present.")
    return obj


def _assignments(key: str) -> Handler:
    def handler(graph: FakeMsGraph, call: Call) -> Reply:
        sp = call.match.group("sp").lower()
        with graph._lock:
            _service_principal(graph, sp)
            found = [dict(a) for a in graph._assignments.values() if str(a[key]).lower() == sp]
        return _page(graph, call, found, f"servicePrincipals('{sp}')/appRoleAssignments")
    return handler


def _delete_assignment(graph: FakeMsGraph, call: Call) -> Reply:
    sp, aid = call.match.group("sp").lower(), call.match.group("aid")
    key = "principalId" if call.path.lower().split("/")[-2] == "approleassignments" else "resourceId"
    with graph._lock:
        a = graph._assignments.get(aid)
        if a is None or str(a[key]).lower() != sp:
            raise error(404, "Request_ResourceNotFound", f"Resource '{aid}' does not exist or one of its queried "
                                                         "reference-property objects are not present.")
        del graph._assignments[aid]
    return Reply(204)


def _grant(graph: FakeMsGraph, call: Call) -> Reply:
    body = call.body if isinstance(call.body, dict) else {}
    sp = call.match.group("sp").lower()
    principal, resource, role = (str(body.get(k) or "").lower() for k in ("principalId", "resourceId", "appRoleId"))
    with graph._lock:
        res = _service_principal(graph, sp)
        if resource != sp:
            raise error(400, "Request_BadRequest", "resourceId must be the service principal of the request's path.")
        who = graph._objects.get(principal)
        if who is None:
            raise error(400, "Request_BadRequest", f"Principal '{principal}' does not exist.")
        roles = {str(r.get("id") or "").lower() for r in res.get("appRoles") or ()}
        if role not in roles:
            raise error(400, "Request_BadRequest", "Permission being assigned was not found on application "
                                                   f"'{res.get('appId')}'.")
        if any(str(a["principalId"]).lower() == principal and str(a["resourceId"]).lower() == sp
               and str(a["appRoleId"]).lower() == role for a in graph._assignments.values()):
            raise error(400, "Request_BadRequest", "Permission being assigned already exists on the object.")
        aid = graph.assign_app_role(principal, sp, role)
        return Reply(201, {"@odata.context": f"{graph.base_url}/v1.0/$metadata#servicePrincipals('{sp}')/"
                                             "appRoleAssignedTo/$entity", **graph._assignments[aid]})


ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"^/v1\.0/servicePrincipals$"), _list_service_principals),
    ("GET", re.compile(_SP + r"/appRoleAssignments$"), _assignments("principalId")),
    ("GET", re.compile(_SP + r"/appRoleAssignedTo$"), _assignments("resourceId")),
    ("DELETE", re.compile(_SP + r"/appRoleAssignments/(?P<aid>[^/]+)$"), _delete_assignment),
    ("DELETE", re.compile(_SP + r"/appRoleAssignedTo/(?P<aid>[^/]+)$"), _delete_assignment),
    ("POST", re.compile(_SP + r"/appRoleAssignedTo$"), _grant),
    ("POST", re.compile(r"^/v1\.0/directoryObjects/getByIds$", re.IGNORECASE), _get_by_ids),
    ("GET", re.compile(r"^/v1\.0/(?P<collection>users|groups|servicePrincipals|directoryObjects)/(?P<id>[^/]+)$"),
     _get_object),
)


class FakeMsGraph:
    """A local fake of Microsoft Graph; see the module docstring."""

    def __init__(self, *, latency: float = 0.0, page_size: int = 100) -> None:
        self.latency = latency
        self.page_size = page_size
        self._objects: dict[str, dict[str, Any]] = {}
        self._assignments: dict[str, dict[str, Any]] = {}
        self._read_only: set[str] = set()
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

        self._server, self._thread = serve(Handler, name="FakeMsGraph", address=self._address or ("127.0.0.1", 0))
        host, port = self._server.server_address[:2]
        self._address = (str(host), int(port))  # a restart after unreachable() comes back on the same port
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        shut(self._server, self._thread)
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

    def add_microsoft_graph(self, *, object_id: str | None = None) -> str:
        """Microsoft Graph's own service principal (appId ``00000003-…``) with app roles for the permissions of
        ``TENANT_WIDE_DATA`` (application permissions: ``allowedMemberTypes`` ``Application``); its object id."""
        from remediator.findings.approles import MS_GRAPH_APP_ID, TENANT_WIDE_DATA  # noqa: PLC0415

        roles = [{"id": guid, "value": name, "displayName": name, "allowedMemberTypes": ["Application"],
                  "isEnabled": True, "description": f"{name} (FakeMsGraph)"} for guid, name in TENANT_WIDE_DATA.items()]
        return self.add_object({"@odata.type": "#microsoft.graph.servicePrincipal",
                                "id": object_id or str(uuid.uuid4()), "displayName": "Microsoft Graph",
                                "appId": MS_GRAPH_APP_ID, "servicePrincipalType": "Application",
                                "accountEnabled": True, "appRoles": roles})

    def assign_app_role(self, principal_id: str, resource_id: str, app_role_id: str, *,
                        created: str = "2026-11-02T09:15:00Z", assignment_id: str | None = None) -> str:
        """Store an app role assignment (``principal_id`` holds ``app_role_id`` of ``resource_id``); its id."""
        with self._lock:
            principal = self._objects.get(principal_id.lower()) or {}
            resource = self._objects.get(resource_id.lower()) or {}
            aid = assignment_id or uuid.uuid4().hex[:22]  # Graph's ids here are base64url-ish strings, not GUIDs
            kind = str(principal.get("@odata.type") or "#microsoft.graph.servicePrincipal").rsplit(".", 1)[-1]
            self._assignments[aid] = {
                "id": aid, "deletedDateTime": None, "appRoleId": app_role_id.lower(), "createdDateTime": created,
                "principalDisplayName": principal.get("displayName"), "principalId": principal_id.lower(),
                "principalType": kind[:1].upper() + kind[1:],
                "resourceDisplayName": resource.get("displayName"), "resourceId": resource_id.lower()}
        return aid

    def app_role_assignments(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self._assignments.items()}

    def read_only(self, token: str = FAKE_TOKEN) -> None:
        """Answer 403 ``Authorization_RequestDenied`` to writes (DELETE; POST but getByIds) carrying ``token``."""
        with self._lock:
            self._read_only.add(token)

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
            write = method in ("DELETE", "PATCH") or (method == "POST" and not path.lower().endswith("/getbyids"))
            denied = token in self._denied or (token in self._read_only and write)
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
