"""``FakeArm``: a local Azure Resource Manager (and Key Vault secrets) server for tests.

A real HTTP server (``ThreadingHTTPServer`` on 127.0.0.1, port 0, daemon thread) that the real
Azure SDK clients talk to, so tests exercise the SDK's serialisation, long-running-operation
polling and paging exactly as production does::

    with FakeArm() as arm:
        arm.load(documents)                      # seed ARM documents (dicts with "id")
        clients = arm.clients()                  # ArmClients wired to the fake
        clients.storage(sub).storage_accounts.get_properties("rg", "sa")
        assert arm.writes == []                  # nothing but reads so far

What it serves, following each operation's status codes in the REST specs:

* every request needs ``api-version`` (400 ``MissingApiVersionParameter`` otherwise); every
  error has a JSON body ``{"error": {"code", "message"}}`` (the SDK needs one to raise
  ``HttpResponseError`` rather than a JSON decoding error);
* ``GET`` of a stored id → 200 (stored casing), else 404 ``ResourceNotFound``; children kept inside
  their parent's ``properties`` (an NSG's ``securityRules``/``defaultSecurityRules``, a VNet's
  ``subnets``) are served, written and deleted in place, so the parent and the child always agree;
* collections (``…/providers/Microsoft.Network/networkInterfaces`` at a resource group or a
  subscription, ``…/networkSecurityGroups/n/securityRules``, any type) → ``{"value", "nextLink"}``
  pages of ``page_size`` with an absolute ``nextLink``;
* role assignments list-for-scope returns assignments at, above or below the scope, with
  ``$filter=principalId eq '…'`` and ``atScope()``; PUT → 201 (409 ``RoleAssignmentExists`` for a
  duplicate principal/role/scope), DELETE → 200 with the deleted body, 204 when absent;
* ``PATCH`` merges the body into the stored document (RFC 7396: objects merge, ``null`` removes,
  arrays replace, ``tags`` replaced whole) → 200 and the full document; 404 when absent;
* ``PUT`` → 201 created / 200 replaced; ``Microsoft.Network`` resources and ACR registries answer
  with ``Azure-AsyncOperation`` (absolute URL on the fake; the operation reports ``InProgress``
  once, then ``Succeeded``); ``Microsoft.Network`` DELETE → 202 + ``Location`` (polled: 202 once,
  then 204), other DELETEs → 200, or 204 when the resource does not exist;
* ACR registry PATCH → 200 (``FakeArm(async_registry_update=True)`` → 201 + Azure-AsyncOperation);
  ``POST …/listCredentials`` and ``…/regenerateCredential {"name": "password"|"password2"}`` over
  random passwords the fake holds (``arm.credentials(registry_id)``); storage ``POST …/listKeys``;
* Key Vault secrets (data plane) under ``/_vault/<vault host>/secrets/<name>``, reached by a real
  ``SecretClient`` through ``RedirectTransport`` (see ``remediator.testing.auth``): the
  challenge handshake (401 + ``WWW-Authenticate`` to an unauthenticated request), ``PUT`` (set)
  and ``GET`` (latest or a version); ``arm.secret(vault_url, name)`` reads the value back.

Recording: ``arm.requests`` lists every request as ``Recorded``; ``arm.writes`` those that are
PUT/PATCH/DELETE or a POST action that changes something (``listCredentials``/``listKeys`` are reads,
flagged ``sensitive``; ``regenerateCredential`` is a write). Key Vault's unauthenticated challenge
probe is recorded but is not a write (nothing was stored). ``arm.fail_next(...)`` injects errors.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from remediator import ids
from remediator.azure.clients import ArmClients
from remediator.testing.auth import VAULT_PREFIX, FakeCredential, RedirectTransport, StaticAuthPolicy

WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE", "POST"})
# POST actions that only read (list-type actions); they return secrets, so they are "sensitive".
READ_ACTIONS = frozenset({"listcredentials", "listkeys", "listaccountsas", "listservicesas"})
SENSITIVE_ACTIONS = frozenset({"listcredentials", "listkeys", "regeneratecredential", "regeneratekey"})

# children ARM returns inside the parent's ``properties`` (parent type → child type segments)
EMBEDDED: dict[str, tuple[str, ...]] = {
    "microsoft.network/networksecuritygroups": ("securityRules", "defaultSecurityRules"),
    "microsoft.network/virtualnetworks": ("subnets",),
}
ROLE_ASSIGNMENTS = "microsoft.authorization/roleassignments"
ASYNC_PUT_TYPES = ("microsoft.network/", "microsoft.containerregistry/registries")
ETAG_NAMESPACES = ("microsoft.network/",)

_ERROR_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "Conflict",
    412: "PreconditionFailed",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the fake received. ``path`` is URL-decoded, ``query`` maps names to values."""

    method: str
    path: str
    query: dict[str, str]
    body: Any | None
    headers: dict[str, str] = field(repr=False)
    status: int = 0

    @property
    def action(self) -> str:
        """The POST action name (``listCredentials``), lower-cased; ``""`` for other requests."""
        if self.method != "POST":
            return ""
        return self.path.rstrip("/").rsplit("/", 1)[-1].lower()

    @property
    def is_write(self) -> bool:
        if self.method not in WRITE_METHODS:
            return False
        if self.status == 401 and self.path.startswith(VAULT_PREFIX):
            return False  # Key Vault's challenge probe: nothing was stored
        return not (self.method == "POST" and self.action in READ_ACTIONS)

    @property
    def sensitive(self) -> bool:
        """Requests whose request or response carries a secret."""
        return self.action in SENSITIVE_ACTIONS or (
            self.path.startswith(VAULT_PREFIX) and "/secrets/" in self.path.lower()
        )


@dataclass(slots=True)
class _Failure:
    method: str
    path_substring: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass(slots=True)
class _Operation:
    kind: str  # "async" (Azure-AsyncOperation) or "location"
    polls: int = 0


class _Reply(Exception):
    """An HTTP answer, raised inside the handler as control flow; never escapes it."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}}, headers)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _merge(target: dict[str, Any], patch: Mapping[str, Any], *, top: bool = True) -> None:
    """RFC 7396 merge patch; at the top level ``tags`` replaces the whole object (ARM semantics)."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(target.get(k), dict) and not (top and k == "tags"):
            _merge(target[k], v, top=False)
        else:
            target[k] = copy.deepcopy(v)


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


class FakeArm:
    """A local fake of ARM for the real Azure SDK clients; see the module docstring."""

    def __init__(self, *, page_size: int = 2, async_registry_update: bool = False) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self.async_registry_update = async_registry_update
        self._docs: dict[str, dict[str, Any]] = {}
        self._credentials: dict[str, dict[str, str]] = {}
        self._storage_keys: dict[str, list[dict[str, str]]] = {}
        self._secrets: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
        self._operations: dict[str, _Operation] = {}
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> FakeArm:
        if self._server is not None:
            return self
        fake = self

        class Handler(_Handler):
            arm = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="FakeArm", daemon=True)
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

    def __enter__(self) -> FakeArm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeArm is not started (use `with FakeArm() as arm:` or arm.start())")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def clients(self, **client_kwargs: Any) -> ArmClients:
        """``ArmClients`` for this fake: fake credential, static bearer policy, no retries, no waits.

        ``client_kwargs`` override the defaults (for example ``retry_total=2``).
        """
        kwargs: dict[str, Any] = {
            "authentication_policy": StaticAuthPolicy(),
            "retry_total": 0,
            "polling_interval": 0,
        }
        kwargs.update(client_kwargs)
        return ArmClients(
            FakeCredential(),
            base_url=self.base_url,
            keyvault_kwargs={"transport": RedirectTransport(self.base_url), "retry_total": 0},
            **kwargs,
        )

    # -- seeding and reading state ----------------------------------------------------------
    def add(self, doc: Mapping[str, Any]) -> None:
        """Store an ARM document (a copy). A child of an embedded type goes into its parent."""
        if not isinstance(doc.get("id"), str) or not str(doc["id"]).strip():
            raise ValueError("an ARM document needs an 'id'")
        with self._lock:
            self._put(copy.deepcopy(dict(doc)), stamp=False)

    def load(self, docs: Iterable[Mapping[str, Any]]) -> None:
        for doc in docs:
            self.add(doc)

    def get(self, resource_id: str) -> dict[str, Any] | None:
        """The current document (a copy), or None."""
        with self._lock:
            doc = self._find(resource_id)
            return copy.deepcopy(doc) if doc is not None else None

    def credentials(self, registry_id: str) -> dict[str, str]:
        """The ACR admin passwords the fake holds for a registry: ``{"password": …, "password2": …}``."""
        with self._lock:
            return dict(self._creds(registry_id))

    def set_credential(self, registry_id: str, name: str, value: str) -> None:
        """Set one ACR admin password (``password`` or ``password2``) the fake holds."""
        if name not in ("password", "password2"):
            raise ValueError("name must be 'password' or 'password2'")
        with self._lock:
            self._creds(registry_id)[name] = value

    def secret(self, vault_url: str, name: str) -> str | None:
        """The latest value of a Key Vault secret set through the fake, or None."""
        host = urlsplit(vault_url).netloc.lower() or vault_url.lower()
        with self._lock:
            versions = self._secrets.get((host, name.lower()))
            return str(versions[-1][1]["value"]) if versions else None

    # -- recording and failure injection ----------------------------------------------------
    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    @property
    def sensitive(self) -> list[Recorded]:
        return [r for r in self.requests if r.sensitive]

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(self, method: str, path_substring: str, status: int, body: Any = None,  # noqa: PLR0917
                  headers: Mapping[str, str] | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests matching ``method`` (``"*"``: any) and
        ``path_substring`` (case-insensitive, on the decoded path) with ``status``.

        ``body`` defaults to ``{"error": {"code": <usual code for status>, "message": …}}``.
        """
        if body is None:
            code = _ERROR_CODES.get(status, f"Status{status}")
            body = {"error": {"code": code, "message": f"Injected failure: {code}."}}
        with self._lock:
            self._failures.append(
                _Failure(method.upper(), path_substring.lower(), status, body, dict(headers or {}), times)
            )

    # -- internals: store -------------------------------------------------------------------
    def _embedded_key(self, child_id: str) -> tuple[dict[str, Any], str] | None:
        """(parent document, property key) when ``child_id`` is an embedded child type."""
        rid = ids.parse(child_id)
        parent = rid.parent()
        if parent is None or len(rid.types) != len(rid.names):
            return None
        keys = EMBEDDED.get(ids.type_key(parent.type), ())
        for k in keys:
            if k.lower() == rid.types[-1].lower():
                pdoc = self._docs.get(ids.key(parent.id))
                return (pdoc, k) if pdoc is not None else None
        return None

    def _find(self, resource_id: str) -> dict[str, Any] | None:
        doc = self._docs.get(ids.key(resource_id))
        if doc is not None:
            return doc
        emb = self._embedded_key(resource_id)
        if emb is None:
            return None
        pdoc, k = emb
        for child in (pdoc.get("properties") or {}).get(k) or []:
            if isinstance(child, dict) and ids.same(str(child.get("id", "")), resource_id):
                return child
        return None

    def _put(self, doc: dict[str, Any], *, stamp: bool = True) -> bool:
        """Store ``doc``; True when it was created. Keeps embedded children inside the parent.

        ``stamp``: a write through the API gets a fresh etag and provisioningState; seeded
        documents (``add``) are stored exactly as given, so reads return what was saved.
        """
        rid = str(doc["id"])
        if stamp:
            self._stamp(doc)
        emb = self._embedded_key(rid)
        if emb is not None:
            pdoc, k = emb
            children = pdoc.setdefault("properties", {}).setdefault(k, [])
            for i, child in enumerate(children):
                if isinstance(child, dict) and ids.same(str(child.get("id", "")), rid):
                    children[i] = doc
                    if stamp:
                        self._stamp(pdoc)
                    return False
            children.append(doc)
            if stamp:
                self._stamp(pdoc)
            return True
        created = ids.key(rid) not in self._docs
        self._docs[ids.key(rid)] = doc
        return created

    def _delete(self, resource_id: str) -> dict[str, Any] | None:
        emb = self._embedded_key(resource_id)
        if emb is not None:
            pdoc, k = emb
            children = (pdoc.get("properties") or {}).get(k) or []
            for i, child in enumerate(children):
                if isinstance(child, dict) and ids.same(str(child.get("id", "")), resource_id):
                    del children[i]
                    self._stamp(pdoc)
                    return child
            return None
        return self._docs.pop(ids.key(resource_id), None)

    @staticmethod
    def _stamp(doc: dict[str, Any]) -> None:
        """Fresh etag on network resources; provisioningState where ARM reports one."""
        rtype = ids.type_key(str(doc.get("type") or ids.resource_type(str(doc.get("id", "")))))
        if rtype.startswith(ETAG_NAMESPACES):
            doc["etag"] = _etag()
            props = doc.setdefault("properties", {})
            if isinstance(props, dict):
                props["provisioningState"] = "Succeeded"

    def _creds(self, registry_id: str) -> dict[str, str]:
        k = ids.key(registry_id)
        if k not in self._credentials:
            self._credentials[k] = {"password": _password(), "password2": _password()}
        return self._credentials[k]

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self._lock:
            for f in self._failures:
                if f.method in ("*", method) and f.path_substring in path.lower():
                    f.times -= 1
                    if f.times <= 0:
                        self._failures.remove(f)
                    return f
        return None

    def _new_operation(self, kind: str) -> str:
        op = f"op{next(self._ids)}-{uuid.uuid4().hex[:8]}"
        self._operations[op] = _Operation(kind)
        return op

    def _page(self, items: list[dict[str, Any]], token: str | None, path: str,
              api_version: str) -> dict[str, Any]:
        if token is not None:
            items = self._pages.pop(token, [])
        first, rest = items[: self.page_size], items[self.page_size:]
        out: dict[str, Any] = {"value": copy.deepcopy(first)}
        if rest:
            nxt = uuid.uuid4().hex
            self._pages[nxt] = rest
            out["nextLink"] = f"{self.base_url}{path}?api-version={api_version}&$skiptoken={nxt}"
        return out


def _password() -> str:
    return secrets.token_urlsafe(24)


_FILTER_PRINCIPAL = re.compile(r"^principalId\s+eq\s+'([^']*)'$", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    arm: FakeArm
    protocol_version = "HTTP/1.1"
    server_version = "FakeArm/1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines may carry names the tests check never leak."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_POST(self) -> None:
        self._serve("POST")

    # -- plumbing ---------------------------------------------------------------------------
    def _serve(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = dict(self.headers.items())
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        reply: _Reply
        try:
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                    raise _error(400, "InvalidRequestContent",
                                 "The request content was invalid JSON.") from None
            reply = self._dispatch(method, path, query, body, headers)
        except _Reply as r:
            reply = r
        except Exception as e:  # a bug in the fake: answer like ARM would, never hang the client
            reply = _error(500, "InternalServerError", f"FakeArm error: {type(e).__name__}: {e}")
        self.arm._record(Recorded(method, path, query, body, headers, reply.status))
        self._send(reply)

    def _send(self, reply: _Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _dispatch(self, method: str, path: str, query: dict[str, str], body: Any,
                  headers: dict[str, str]) -> _Reply:
        arm = self.arm
        failure = arm._take_failure(method, path)
        if failure is not None:
            return _Reply(failure.status, failure.body, failure.headers)
        api_version = query.get("api-version")
        if not api_version:
            raise _error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
        if path.startswith(VAULT_PREFIX):
            return self._vault(method, path, query, body, headers)
        if path.startswith("/_operations/"):
            return self._operation(path)
        with arm._lock:
            if method == "POST":
                return self._post(path, body, api_version)
            rid = ids.parse(path)
            is_collection = len(rid.types) > len(rid.names)
            if method == "GET" and is_collection:
                return self._list(path, query, api_version)
            if is_collection or not rid.namespace:
                if method == "GET" and arm._find(path) is not None:
                    return _Reply(200, copy.deepcopy(arm._find(path)))
                raise _error(404, "NotFound" if method == "GET" else "InvalidResourceType",
                             f"The resource path '{path}' is not a resource the fake can {method}.")
            if method == "GET":
                doc = arm._find(path)
                if doc is None:
                    raise self._not_found(path)
                return _Reply(200, copy.deepcopy(doc))
            if method == "PUT":
                return self._put(path, body, api_version)
            if method == "PATCH":
                return self._patch(path, body, api_version)
            return self._delete(path, api_version)

    @staticmethod
    def _not_found(path: str) -> _Reply:
        rid = ids.parse(path)
        if ids.type_key(rid.type) == ROLE_ASSIGNMENTS:
            return _error(404, "RoleAssignmentNotFound", "The role assignment does not exist.")
        where = f" under resource group '{rid.resource_group}'" if rid.resource_group else ""
        return _error(404, "ResourceNotFound",
                      f"The Resource '{rid.type}/{'/'.join(rid.names)}'{where} was not found.")

    def _async_headers(self, kind: str, api_version: str) -> dict[str, str]:
        op = self.arm._new_operation(kind)
        url = f"{self.arm.base_url}/_operations/{op}?api-version={api_version}"
        name = "Azure-AsyncOperation" if kind == "async" else "Location"
        return {name: url, "Retry-After": "0"}

    def _operation(self, path: str) -> _Reply:
        op_id = path.rstrip("/").rsplit("/", 1)[-1]
        with self.arm._lock:
            op = self.arm._operations.get(op_id)
            if op is None:
                raise _error(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
            op.polls += 1
            polls = op.polls
        if op.kind == "async":
            status = "InProgress" if polls == 1 else "Succeeded"
            return _Reply(200, {"status": status}, {"Retry-After": "0"} if polls == 1 else None)
        if polls == 1:
            location = f"{self.arm.base_url}{path}?api-version=x"
            return _Reply(202, None, {"Location": location, "Retry-After": "0"})
        return _Reply(204)

    # -- resources --------------------------------------------------------------------------
    def _put(self, path: str, body: Any, api_version: str) -> _Reply:
        arm = self.arm
        if not isinstance(body, dict):
            raise _error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        rid = ids.parse(path)
        rtype = ids.type_key(rid.type)
        existing = arm._find(path)
        doc = copy.deepcopy(body)
        for k in ("id", "name", "type"):
            doc.pop(k, None)
        doc = {"id": existing["id"] if existing else path, "name": rid.name, "type": rid.type, **doc}
        if rtype == ROLE_ASSIGNMENTS:
            return self._put_role_assignment(path, doc, existing)
        parent = rid.parent()
        if arm._embedded_key(path) is None and parent is not None and \
                any(k.lower() == rid.types[-1].lower() for k in EMBEDDED.get(ids.type_key(parent.type), ())):
            raise _error(404, "ParentResourceNotFound", f"Parent resource '{parent.id}' was not found.")
        created = arm._put(doc)
        status = 201 if created else 200
        if rtype.startswith(ASYNC_PUT_TYPES):
            return _Reply(status, copy.deepcopy(doc), self._async_headers("async", api_version))
        return _Reply(status, copy.deepcopy(doc))

    def _put_role_assignment(self, path: str, doc: dict[str, Any], existing: dict[str, Any] | None) -> _Reply:
        props = doc.setdefault("properties", {})
        scope = path.rsplit("/providers/", 1)[0] or "/"
        props.setdefault("scope", scope)
        for other in self.arm._docs.values():
            if other is existing or ids.type_key(str(other.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            op = other.get("properties") or {}
            if (str(op.get("principalId", "")).lower() == str(props.get("principalId", "")).lower()
                    and ids.same(str(op.get("roleDefinitionId", "")), str(props.get("roleDefinitionId", "")))
                    and ids.same(str(op.get("scope", "")), scope)):
                raise _error(409, "RoleAssignmentExists", "The role assignment already exists.")
        if existing is None:
            props.setdefault("createdOn", _now())
        props["updatedOn"] = _now()
        created = self.arm._put(doc)
        return _Reply(201 if created else 200, copy.deepcopy(doc))

    def _patch(self, path: str, body: Any, api_version: str) -> _Reply:
        arm = self.arm
        if not isinstance(body, dict):
            raise _error(400, "InvalidRequestContent", "The request content must be a JSON object.")
        doc = arm._find(path)
        if doc is None:
            raise self._not_found(path)
        patch = {k: v for k, v in body.items() if k not in ("id", "name", "type")}
        _merge(doc, patch)
        arm._stamp(doc)
        rtype = ids.type_key(ids.resource_type(path))
        if rtype == "microsoft.containerregistry/registries" and arm.async_registry_update:
            return _Reply(201, copy.deepcopy(doc), self._async_headers("async", api_version))
        return _Reply(200, copy.deepcopy(doc))

    def _delete(self, path: str, api_version: str) -> _Reply:
        arm = self.arm
        rtype = ids.type_key(ids.resource_type(path))
        gone = arm._delete(path)
        if rtype == ROLE_ASSIGNMENTS:
            return _Reply(200, gone) if gone is not None else _Reply(204)
        if gone is None:
            return _Reply(204)
        if rtype.startswith("microsoft.network/"):
            return _Reply(202, None, self._async_headers("location", api_version))
        return _Reply(200)

    def _list(self, path: str, query: dict[str, str], api_version: str) -> _Reply:
        arm = self.arm
        token = query.get("$skiptoken") or query.get("$skipToken")
        if token is not None:
            return _Reply(200, arm._page([], token, path, api_version))
        rid = ids.parse(path)
        want = ids.type_key(rid.type)
        if want == ROLE_ASSIGNMENTS:
            items = self._role_assignments(path, query.get("$filter"))
        else:
            if len(rid.types) > 1:  # a child collection: its parent resource is the scope
                scope = path.rsplit("/", 1)[0]
            else:
                scope = re.split(r"/providers/", path, maxsplit=1, flags=re.IGNORECASE)[0]
            items = []
            for doc in arm._docs.values():
                did = str(doc.get("id", ""))
                dtype = ids.type_key(str(doc.get("type") or ids.resource_type(did)))
                if dtype == want and ids.is_under(did, scope):
                    items.append(doc)
            emb = arm._find(scope) if len(rid.types) > 1 else None
            if emb is not None:
                for k in EMBEDDED.get(ids.type_key(str(emb.get("type", ""))), ()):
                    if k.lower() == rid.types[-1].lower():
                        children = (emb.get("properties") or {}).get(k) or []
                        items.extend(c for c in children if isinstance(c, dict))
        return _Reply(200, arm._page(items, None, path, api_version))

    def _role_assignments(self, path: str, flt: str | None) -> list[dict[str, Any]]:
        scope = re.split(r"/providers/microsoft\.authorization/roleassignments", path, maxsplit=1,
                         flags=re.IGNORECASE)[0] or "/"
        principal: str | None = None
        at_scope = False
        for part in re.split(r"\s+and\s+", flt or "", flags=re.IGNORECASE):
            clause = part.strip()
            if not clause:
                continue
            if clause.lower() == "atscope()":
                at_scope = True
                continue
            m = _FILTER_PRINCIPAL.match(clause)
            if m is None:
                raise _error(400, "UnsupportedQuery", f"The filter '{clause}' is not supported.")
            principal = m.group(1).lower()
        out = []
        for doc in self.arm._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            at = str(props.get("scope") or str(doc["id"]).rsplit("/providers/", 1)[0] or "/")
            above = ids.is_under(scope, at) or at == "/"
            below = ids.is_under(at, scope) and not ids.same(at, scope)
            if not (above or (below and not at_scope)):
                continue
            if principal and str(props.get("principalId", "")).lower() != principal:
                continue
            out.append(doc)
        return out

    def _post(self, path: str, body: Any, api_version: str) -> _Reply:
        arm = self.arm
        resource, _, action = path.rstrip("/").rpartition("/")
        action_key = action.lower()
        doc = arm._find(resource)
        if doc is None:
            raise self._not_found(resource)
        rtype = ids.type_key(ids.resource_type(resource))
        if rtype == "microsoft.containerregistry/registries" and action_key in ("listcredentials",
                                                                                "regeneratecredential"):
            creds = arm._creds(resource)
            if action_key == "regeneratecredential":
                name = body.get("name") if isinstance(body, dict) else None
                if name not in ("password", "password2"):
                    raise _error(400, "InvalidRequestContent",
                                 "The 'name' must be 'password' or 'password2'.")
                creds[name] = _password()
            return _Reply(200, {
                "username": ids.parse(resource).name,
                "passwords": [{"name": "password", "value": creds["password"]},
                              {"name": "password2", "value": creds["password2"]}],
            })
        if rtype == "microsoft.storage/storageaccounts" and action_key == "listkeys":
            keys = arm._storage_keys.setdefault(ids.key(resource), [
                {"keyName": "key1", "value": _password(), "permissions": "FULL"},
                {"keyName": "key2", "value": _password(), "permissions": "FULL"},
            ])
            return _Reply(200, {"keys": copy.deepcopy(keys)})
        raise _error(400, "UnsupportedAction", f"FakeArm does not implement POST '{action}' on '{rtype}'.")

    # -- Key Vault data plane -------------------------------------------------------------------
    def _vault(self, method: str, path: str, query: dict[str, str], body: Any,
               headers: dict[str, str]) -> _Reply:
        rest = path[len(VAULT_PREFIX):]
        host, _, sub = rest.partition("/")
        host = host.lower()
        if not any(k.lower() == "authorization" for k in headers):
            domain = host.split(".", 1)[1] if "." in host else host
            raise _Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a "
                                                                            "Bearer or PoP token."}},
                         {"WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
                                              '00000000-0000-0000-0000-000000000000", '
                                              f'resource="https://{domain}"'})
        parts = [p for p in sub.split("/") if p]
        if len(parts) < 2 or parts[0].lower() != "secrets":
            raise _error(400, "BadParameter", f"FakeArm's vault does not serve '/{sub}'.")
        name = parts[1]
        key = (host, name.lower())
        with self.arm._lock:
            if method == "PUT" and len(parts) == 2:
                if not isinstance(body, dict) or not isinstance(body.get("value"), str):
                    raise _error(400, "BadParameter", "The secret 'value' is required.")
                version = uuid.uuid4().hex
                ts = int(datetime.now(UTC).timestamp())
                bundle = {
                    "value": body["value"],
                    "id": f"https://{host}/secrets/{name}/{version}",
                    "attributes": {"enabled": True, "created": ts, "updated": ts,
                                   "recoveryLevel": "Recoverable+Purgeable",
                                   **(body.get("attributes") or {})},
                    "tags": body.get("tags") or {},
                }
                if body.get("contentType"):
                    bundle["contentType"] = body["contentType"]
                self.arm._secrets.setdefault(key, []).append((version, bundle))
                return _Reply(200, copy.deepcopy(bundle))
            if method == "GET":
                versions = self.arm._secrets.get(key) or []
                want = parts[2] if len(parts) > 2 and parts[2] else None
                for version, bundle in reversed(versions):
                    if want is None or version == want:
                        return _Reply(200, copy.deepcopy(bundle))
                raise _error(404, "SecretNotFound",
                             f"A secret with (name/id) {name} was not found in this key vault.")
        raise _error(405, "BadParameter", f"FakeArm's vault does not implement {method} '/{sub}'.")
