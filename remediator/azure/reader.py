"""``LiveState``: the ``StateReader`` over live ARM, read-only, through the real SDK clients.

Design choices:

* **Typed operations, raw bodies.** Each supported type is read with the SDK operation that
  ``apply`` later writes through (``storage_accounts.get_properties``, ``security_rules.get``,
  ``registries.get``, ``role_assignments.list_for_scope`` …), so the URL, the API version and the
  error mapping are the SDK's own. What is returned is the response body exactly as ARM sent it
  (the operation's public ``cls`` hook for single reads; azure-core's ``raw_response_hook`` for
  each page of a list), not a re-serialised model: the msrest models of
  ``azure-mgmt-authorization`` drop fields they do not know and reformat timestamps, which would
  make the same resource plan to a different fingerprint live and from a saved file.
* **Generic GET for types without an SDK here.** Virtual machines (no compute SDK dependency)
  are read with ``GET <id>?api-version=2024-07-01``, and the declarative actions' types with their
  pinned API versions, through azure-mgmt-resource's generic client pipeline (``send_request``:
  same credential, endpoint, retry and logging policies). Reading *every* type
  this way would be simpler, but it would pin API versions in two places (here and in the SDK
  that writes) and lose the SDK's per-operation error mapping; the table below is the exception.
* **Read-only by construction.** Only GETs (and list GETs) are issued; there is no write path.
  404 is ``None``; any other failure is a ``StateError`` of one line naming the resource, the
  HTTP status and ARM's error code (planning reports it as that finding's error).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from remediator import ids
from remediator.azure.clients import ArmClients
from remediator.errors import StateError
from remediator.words import plural

# ARM types read with a generic GET (no SDK for them here), with the API version used. The
# declarative actions (``remediator.actions.properties``) add their types and pinned versions, so a
# resource is read with the API version it is written with.
RESOURCE_GROUP_API = "2021-04-01"  # Resource Groups - Get (Microsoft.Resources)
GENERIC_API_VERSIONS: dict[str, str] = {
    "microsoft.compute/virtualmachines": "2024-07-01",
}


# Types read with a generic GET at a version no action pins (the Modify definitions' types, from
# ``remediator/actions/modify_aliases.json``): used only where no action registered its own version.
FALLBACK_API_VERSIONS: dict[str, str] = {}
PROVIDER_API = "2021-04-01"  # Providers - Get, with $expand=resourceTypes/aliases (Microsoft.Resources)
CACHED_TYPES = frozenset({"microsoft.authorization/policydefinitions", "microsoft.authorization/policysetdefinitions"})
CACHE_SECONDS = 900.0
"""Policy definitions and providers' alias metadata change rarely: read once per 15 minutes per reader
(the deployment's one long-lived ``LiveState``)."""


def register_fallback_api_version(resource_type: str, api_version: str) -> None:
    """Read ``resource_type`` at ``api_version`` when no action registered a version for it."""
    FALLBACK_API_VERSIONS.setdefault(ids.type_key(resource_type), api_version)


def api_version_of(resource_type: str) -> str | None:
    """The API version a generic GET reads ``resource_type`` with (an action's, else the fallback)."""
    key = ids.type_key(resource_type)
    return GENERIC_API_VERSIONS.get(key) or FALLBACK_API_VERSIONS.get(key)


def is_provider(rid: ids.ResourceId) -> bool:
    """``/subscriptions/<id>/providers/<namespace>``: a resource provider (its alias metadata)."""
    return bool(rid.subscription_id and rid.namespace and not rid.types and not rid.resource_group)


def register_api_version(resource_type: str, api_version: str) -> None:
    """Read ``resource_type`` with a generic GET at ``api_version`` (types with an SDK getter keep it)."""
    key = ids.type_key(resource_type)
    known = GENERIC_API_VERSIONS.get(key)
    if known is not None and known != api_version:
        raise RuntimeError(f"{resource_type}: API version {api_version} declared, {known} already in use")
    if key not in _GETTERS:
        GENERIC_API_VERSIONS[key] = api_version


# Types read (never written) with a generic GET when no action declares a version for them: the resources a
# fix attaches something to (a diagnostic setting on a search service, a web app, a data factory …). A
# version an action writes at (``register_api_version``) wins over one of these.
READ_API_VERSIONS: dict[str, str] = {}


def register_read_version(resource_type: str, api_version: str) -> None:
    """Read ``resource_type`` with a generic GET at ``api_version`` unless another version is declared
    for it (first registration wins; never a conflict)."""
    READ_API_VERSIONS.setdefault(ids.type_key(resource_type), api_version)


# Extension resource types listed on the resource they are attached to (``{resource}/providers/{type}``, a
# generic GET following ``nextLink``), with the API version: ``scope`` of ``list`` is that resource.
EXTENSION_LISTS: dict[str, str] = {}


def register_extension_list(resource_type: str, api_version: str) -> None:
    """List ``resource_type`` (an extension resource such as ``Microsoft.Insights/diagnosticSettings``) on
    any resource with a generic GET at ``api_version``; its documents are read that way too."""
    register_api_version(resource_type, api_version)
    EXTENSION_LISTS[ids.type_key(resource_type)] = api_version


# type → (client kind, operation group, method, number of names in the id) of the SDK read
_GETTERS: dict[str, tuple[str, str, str, int]] = {
    "microsoft.storage/storageaccounts": ("storage", "storage_accounts", "get_properties", 1),
    "microsoft.storage/storageaccounts/blobservices/containers": ("storage", "blob_containers", "get", 3),
    "microsoft.network/networksecuritygroups": ("network", "network_security_groups", "get", 1),
    "microsoft.network/networksecuritygroups/securityrules": ("network", "security_rules", "get", 2),
    "microsoft.network/networksecuritygroups/defaultsecurityrules":
        ("network", "default_security_rules", "get", 2),
    "microsoft.network/networkinterfaces": ("network", "network_interfaces", "get", 1),
    "microsoft.network/virtualnetworks": ("network", "virtual_networks", "get", 1),
    "microsoft.network/virtualnetworks/subnets": ("network", "subnets", "get", 2),
    "microsoft.network/virtualnetworks/virtualnetworkpeerings": ("network", "virtual_network_peerings", "get", 2),
    "microsoft.network/privateendpoints": ("network", "private_endpoints", "get", 1),
    "microsoft.network/privateendpoints/privatednszonegroups": ("network", "private_dns_zone_groups", "get", 2),
    "microsoft.containerregistry/registries": ("containerregistry", "registries", "get", 1),
}
ROLE_ASSIGNMENT = "microsoft.authorization/roleassignments"
Documents = list[dict[str, Any]]


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
    """``cls`` hook of a generated operation: the response body as ARM sent it."""
    return json.loads(pipeline_response.http_response.text())


def _arguments(rid: ids.ResourceId, n: int) -> tuple[str, ...]:
    """The SDK's positional arguments: resource group, then the names (``blobServices/default`` skipped)."""
    if not rid.resource_group or len(rid.names) != n:
        raise StateError(f"{rid.id}: not a resource id of type {rid.type} (expected "
                         f"/subscriptions/…/resourceGroups/…/providers/{rid.type} with {plural(n, 'name')})")
    names = rid.names
    if ids.type_key(rid.type) == "microsoft.storage/storageaccounts/blobservices/containers":
        names = (names[0], names[2])
    return (rid.resource_group, *names)


# (resource group lister, subscription lister) per type: the operation-group attribute and methods
_LISTERS: dict[str, tuple[str, str, str, str]] = {
    "microsoft.network/networkinterfaces": ("network", "network_interfaces", "list", "list_all"),
    "microsoft.network/networksecuritygroups": ("network", "network_security_groups", "list", "list_all"),
    "microsoft.network/virtualnetworks": ("network", "virtual_networks", "list", "list_all"),
    "microsoft.storage/storageaccounts": ("storage", "storage_accounts", "list_by_resource_group", "list"),
    "microsoft.containerregistry/registries": ("containerregistry", "registries", "list_by_resource_group",
                                               "list"),
}


GRAPH_PREFIX = "msgraph:/"  # Microsoft Graph objects a finding names (``remediator.findings.approles``)


def http_error_line(exc: BaseException) -> str:
    """One line describing an azure-core error: ``403 AuthorizationFailed: <message>``.

    Uses only the response's status and ARM's error code and message (never the request, whose
    body may carry a secret); newlines are collapsed.
    """
    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None)
    if not message:
        message = getattr(exc, "reason", None) or type(exc).__name__
        if status is None:  # a transport error: its text is about the connection, not the payload
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    parts = [str(p) for p in (status, code) if p]
    head = " ".join(parts)
    text = f"{head}: {message}" if head else str(message)
    return " ".join(text.split())


class LiveState:
    """Read-only ARM state through ``ArmClients``; see the module docstring."""

    def __init__(self, clients: ArmClients, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clients = clients
        self._clock = clock  # the cache's (policy definitions, providers' alias metadata)
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError  # noqa: PLC0415

        if resource_id.lower().startswith(GRAPH_PREFIX):
            return self._directory_object(resource_id)
        rid = ids.parse(resource_id)
        tkey = ids.type_key(rid.type)
        if is_provider(rid) or tkey in CACHED_TYPES:
            return self._cached(rid)
        if not rid.subscription_id and tkey not in GENERIC_API_VERSIONS:  # generic GETs read any scope (a
            # management group's policy exemption)
            raise StateError(f"{resource_id}: not an ARM resource id (no /subscriptions/<id>)")
        try:
            if tkey in _GETTERS:
                kind, group, method, n = _GETTERS[tkey]
                operations = getattr(getattr(self.clients, kind)(rid.subscription_id), group)
                doc = getattr(operations, method)(*_arguments(rid, n), cls=_raw)
            elif tkey in GENERIC_API_VERSIONS:
                doc = self._generic_get(rid, GENERIC_API_VERSIONS[tkey])
            elif tkey in READ_API_VERSIONS and rid.subscription_id:
                doc = self._generic_get(rid, READ_API_VERSIONS[tkey])
            elif tkey in FALLBACK_API_VERSIONS:
                doc = self._generic_get(rid, FALLBACK_API_VERSIONS[tkey])
            elif not tkey and rid.resource_group and rid.subscription_id:  # a resource group (its tags)
                doc = self._generic_get(rid, RESOURCE_GROUP_API)
            elif tkey == ROLE_ASSIGNMENT:
                scope = rid.id.rsplit("/providers/", 1)[0]
                doc = self.clients.authorization(rid.subscription_id or "").role_assignments.get(
                    scope, rid.name, cls=_raw)
            else:
                supported = ", ".join(sorted({*_GETTERS, *GENERIC_API_VERSIONS, *READ_API_VERSIONS, ROLE_ASSIGNMENT}))
                raise StateError(f"{resource_id}: live state cannot read type {rid.type or '(none)'}; "
                                 f"supported: {supported}")
        except ResourceNotFoundError:
            return None
        except AzureError as e:
            raise StateError(f"cannot read {resource_id} from ARM: {http_error_line(e)}") from None
        return doc if isinstance(doc, dict) else None

    def _directory_object(self, resource_id: str) -> dict[str, Any] | None:
        """``msgraph:/servicePrincipals/<id>`` (``remediator.findings.approles``): the service principal from
        Microsoft Graph, None when it is gone. A Graph failure is a ``StateError`` chained from the
        ``DirectoryError`` (a transient one is planned again)."""
        from remediator.errors import DirectoryError  # noqa: PLC0415

        path = resource_id[len(GRAPH_PREFIX):].strip("/").split("/")
        shape = [p.lower() for p in path[::2]]
        if shape not in (["serviceprincipals"], ["serviceprincipals", "approleassignments"]) or len(path) % 2:
            raise StateError(f"{resource_id}: live state reads msgraph:/servicePrincipals/<object id>"
                             "[/appRoleAssignments/<id>] only")
        try:
            if len(path) == 4:  # one assignment the service principal holds (read through its list)
                wanted = path[3].lower()
                return next((a for a in self.clients.msgraph().app_role_assignments(path[1])
                             if str(a.get("id") or "").lower() == wanted), None)
            doc = self.clients.msgraph().service_principal(path[1])
        except DirectoryError as e:
            raise StateError(f"cannot read {resource_id}: {e}") from e
        if doc is None:
            return None
        return {k: v for k, v in doc.items() if k != "tags"}  # Graph's tags are a list of strings, not ARM's map

    def _cached(self, rid: ids.ResourceId) -> dict[str, Any] | None:
        """A policy definition (by id, at any scope) or a provider with its aliases, through a cache of
        ``CACHE_SECONDS`` per reader (a definition edited meanwhile is read again after that; a plan
        against an older one is caught by the fingerprint check before any write)."""
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        key = ids.key(rid.id)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            if is_provider(rid):
                doc = self._generic_get(rid, PROVIDER_API, expand="resourceTypes/aliases")
            else:
                doc = self._generic_get(rid, "2023-04-01")
        except AzureError as e:
            raise StateError(f"cannot read {rid.id} from ARM: {http_error_line(e)}") from None
        self._cache[key] = (now + CACHE_SECONDS, doc)
        return doc

    def _generic_get(self, rid: ids.ResourceId, api_version: str, *, expand: str = "") -> dict[str, Any] | None:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.core.rest import HttpRequest  # noqa: PLC0415

        client = self.clients.resources(rid.subscription_id or "")
        url = self.clients.base_url + quote(rid.id, safe="/")
        params = {"api-version": api_version, **({"$expand": expand} if expand else {})}
        request = HttpRequest("GET", url, params=params)
        response = client.send_request(request)
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        body = response.json()
        return body if isinstance(body, dict) else None

    def list(self, resource_type: str, scope: str) -> Documents:
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        tkey = ids.type_key(resource_type)
        if tkey in EXTENSION_LISTS:
            return self._list_extension(resource_type, scope, EXTENSION_LISTS[tkey])
        spec = _LISTERS.get(tkey)
        sc = ids.parse(scope)
        if spec is None:
            supported = ", ".join(sorted(_LISTERS))
            raise StateError(f"live state cannot list type {resource_type}; supported: {supported}")
        if not sc.subscription_id:
            raise StateError(f"{scope}: not a subscription or resource group scope")
        kind, group, by_rg, by_sub = spec
        ops = getattr(getattr(self.clients, kind)(sc.subscription_id), group)
        pages: list[Any] = []
        hook = _page_collector(pages)
        try:
            if sc.resource_group:
                pager = getattr(ops, by_rg)(sc.resource_group, raw_response_hook=hook)
            else:
                pager = getattr(ops, by_sub)(raw_response_hook=hook)
            for _ in pager:
                pass
        except AzureError as e:
            where = f"{resource_type} at {scope}"
            raise StateError(f"cannot list {where} from ARM: {http_error_line(e)}") from None
        return [d for d in _values(pages) if ids.is_under(str(d.get("id", "")), scope)]

    def _list_extension(self, resource_type: str, scope: str, api_version: str) -> Documents:
        """``GET {scope}/providers/{resource_type}`` and its ``nextLink`` pages."""
        from azure.core.exceptions import AzureError, HttpResponseError  # noqa: PLC0415
        from azure.core.rest import HttpRequest  # noqa: PLC0415

        sc = ids.parse(scope)
        if not sc.subscription_id:
            raise StateError(f"{scope}: not a resource id (no /subscriptions/<id>)")
        client = self.clients.resources(sc.subscription_id)
        url: str | None = self.clients.base_url + quote(f"{scope.rstrip('/')}/providers/{resource_type}", safe="/")
        params: dict[str, str] | None = {"api-version": api_version}
        out: Documents = []
        try:
            for _ in range(1000):  # a runaway nextLink chain ends here
                if url is None:
                    break
                response = client.send_request(HttpRequest("GET", url, params=params))
                if response.status_code == 404:
                    return []  # the resource itself is gone: nothing is attached to it
                if response.status_code >= 400:
                    raise HttpResponseError(response=response)
                page = response.json()
                out.extend(d for d in (page.get("value") or []) if isinstance(d, dict))
                url, params = page.get("nextLink") or None, None
        except AzureError as e:
            raise StateError(f"cannot list {resource_type} on {scope} from ARM: {http_error_line(e)}") from None
        return out

    def role_assignments(self, scope: str, principal_id: str | None = None) -> Documents:
        from azure.core.exceptions import AzureError  # noqa: PLC0415

        sc = ids.parse(scope)
        if not sc.subscription_id:
            raise StateError(f"{scope}: role assignments are read at a subscription scope or below")
        pages: list[Any] = []
        flt = f"principalId eq '{principal_id}'" if principal_id else None
        try:
            pager = self.clients.authorization(sc.subscription_id).role_assignments.list_for_scope(
                scope, filter=flt, raw_response_hook=_page_collector(pages))
            for _ in pager:
                pass
        except AzureError as e:
            where = f"role assignments at {scope}"
            raise StateError(f"cannot list {where} from ARM: {http_error_line(e)}") from None
        return list(_values(pages))


def _page_collector(pages: list[Any]) -> Callable[[Any], None]:
    """A ``raw_response_hook`` keeping the JSON body of every successful page, in order."""

    def hook(pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        if 200 <= response.status_code < 300:
            pages.append(json.loads(response.text()))

    return hook


def _values(pages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in pages:
        if isinstance(page, dict):
            out.extend(d for d in page.get("value") or [] if isinstance(d, dict))
    return out
