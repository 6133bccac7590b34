"""FakeArm's Private Link: private endpoints, their connections on the target, DNS zone groups.

``FakeArm`` hands these requests to :class:`PrivateLink` (``arm.private_link``); everything else about
the fake (recording, throttling, ``fail_next``, ``stall``, ``enforce_grants``) applies to them too.

What it serves, following the REST specs (Azure/azure-rest-api-specs, network
``stable/2024-05-01/examples/PrivateEndpointCreate.json``, ``PrivateEndpointGet.json``,
``PrivateEndpointDnsZoneGroupCreate.json``; privatedns ``stable/2024-06-01/examples/RecordSetAGet.json``,
``PrivateZoneGet.json``, ``VirtualNetworkLinkGet.json``):

* ``PUT …/Microsoft.Network/privateEndpoints/{name}`` → 201 (200 for an update) with
  ``Azure-AsyncOperation``; the body is validated as the Network RP does (below). The endpoint reads
  ``provisioningState: Updating`` until the operation has been polled ``provisioning_polls`` times
  (``InProgress``), then ``Succeeded`` (or ``Failed``: :meth:`PrivateLink.fail_endpoint_provisioning`).
  ARM fills the read-only properties: each connection's ``id``/``type``/``etag`` and
  ``privateLinkServiceConnectionState``, ``networkInterfaces`` (a ``{pe}.nic.{guid}`` NIC document is
  created in the endpoint's resource group with the private IP), ``customDnsConfigs`` (the target's FQDNs
  for the group id, each with a private IP from the subnet's ``addressPrefix``, from ``.4``: Azure keeps
  the first four addresses), ``resourceGuid``, ``etag``.
* Targets: AI services accounts, Search services, Cosmos DB accounts, key vaults, ML workspaces, storage
  accounts, registries, App Service apps, data factories, managed HSMs, Databricks and Synapse workspaces,
  Storage Sync services and Azure Monitor private link scopes (``TARGETS``: each type's group ids and the
  public names each serves). Apps and data factories do not embed their connections in their documents:
  a ``GET`` of the target leaves them out and ``GET {target}/privateEndpointConnections`` lists them
  (``LISTED_APART``).
* The target resource gets an entry in ``properties.privateEndpointConnections`` (the shape of
  cognitiveservices ``GetPrivateEndpointConnection.json``): **Approved** ("Auto-Approved") for a
  ``privateLinkServiceConnections`` entry, **Pending** (the request message) for a
  ``manualPrivateLinkServiceConnections`` one, or Pending when :meth:`PrivateLink.keep_pending` says the
  target's owner approves by hand. The entry is addressable as ``{target}/privateEndpointConnections/{name}``:
  ``GET``, ``PUT`` (``privateLinkServiceConnectionState.status`` Approved or Rejected: the endpoint's own
  connection shows the same state) and ``DELETE`` (the endpoint's connection becomes Disconnected).
* ``DELETE`` of the endpoint → 202 + ``Location`` (polled to 204): its connection leaves the target, its
  NIC, its zone groups and their A records go.
* ``PUT …/privateEndpoints/{pe}/privateDnsZoneGroups/{name}`` → 201/200 + ``Azure-AsyncOperation``; when the
  operation succeeds each configured zone gets an A record set per FQDN of the endpoint that belongs to the
  zone (``acct.openai.azure.com`` → ``acct`` in ``privatelink.openai.azure.com``; a Key Vault's
  ``kv.vault.azure.net`` → ``kv`` in ``privatelink.vaultcore.azure.net``), TTL 10, and the group's
  ``recordSets`` list them. ``DELETE`` → 202 + ``Location``: its records go. Private DNS zones,
  ``virtualNetworkLinks`` and record sets are ordinary documents (``arm.add``, ``GET``).

Validation (each a 400 with ARM's code and message shape, real codes cited):

* no ``location`` → ``LocationRequired``; a ``subnet.id`` that is not a resource id → ``LinkedInvalidPropertyId``;
  a subnet that does not exist, or is in another subscription or region than the endpoint (the private
  endpoint overview: "must be deployed in the same region and subscription as the virtual network") →
  ``InvalidResourceReference``;
* a connection without ``privateLinkServiceId`` or ``groupIds`` → ``MissingParameterOnPrivateLinkServiceConnection``
  (Azure/azure-cli#15136); more than one group id → ``OnlyOneGroupIdPermitted``
  (hashicorp/terraform-provider-azurerm#5820); a group id the target type does not have →
  ``InvalidValuesForRequestParameters`` "Call to {type} failed. Error message: Values for request parameters
  are invalid: GroupId: {id}." (Azure/azure-cli#16750; Storage compares group ids case-sensitively there, the
  others are compared without case here); a target that does not exist → 404 ``ResourceNotFound``;
  Premium-only targets (container registries) on another SKU → 400 ``PrivateEndpointNotSupportedForSku``
  (the fake's own code: the registry docs say only Premium supports private endpoints; no recorded error body);
  an endpoint with no connection at all → 400 ``PrivateEndpointWithoutConnections`` (the fake's own code).

Authorization, as ARM checks it when ``arm.enforce_grants(principal)`` is on (the caller is that principal
or unidentified; other callers, and every caller without enforcement, may do everything): the write itself
needs its action at the resource (``Microsoft.Network/privateEndpoints/write``, 403 ``AuthorizationFailed``),
and the *linked* resources their own: ``Microsoft.Network/virtualNetworks/subnets/join/action`` on the subnet,
``{target type}/privateEndpointConnectionsApproval/action`` on the target for an auto-approved connection
(learn.microsoft.com azure/private-link/rbac-permissions; without it ARM refuses rather than asking:
MicrosoftDocs/azure-docs#96892, Azure/azure-sdk-for-go#14306), ``Microsoft.Network/privateDnsZones/join/action``
on each zone of a zone group; a missing one is 403 ``LinkedAuthorizationFailed`` "The client '{oid}' with object
id '{oid}' has permission to perform action '{action}' on scope '{scope}'; however, it does not have permission
to perform action '{linked action}' on the linked scope(s) '{linked}' or the linked scope(s) are invalid."
(the shape of microsoft/planetary-computer-hub#25). Actions come from the caller's role assignments at or above
each scope through ``ROLE_ACTIONS`` (wildcards as in role definitions; ``notActions`` subtract).

Faults (each takes ``times``): :meth:`~PrivateLink.fail_endpoint_provisioning` (the operation ends ``Failed``,
the endpoint reads ``Failed``, its connection leaves the target), :meth:`~PrivateLink.keep_pending` (an
auto-approved connection stays Pending: the target owner's approval workflow),
:meth:`~PrivateLink.fail_zone_group` (the zone group's operation ends ``Failed`` and no record is written).
"""

from __future__ import annotations

import copy
import fnmatch
import ipaddress
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remediator import ids

if TYPE_CHECKING:
    from remediator.testing.fake_arm import FakeArm

PRIVATE_ENDPOINTS = "microsoft.network/privateendpoints"
ZONE_GROUPS = "microsoft.network/privateendpoints/privatednszonegroups"
CONNECTION_SEGMENT = "privateendpointconnections"
SUBNET_JOIN = "Microsoft.Network/virtualNetworks/subnets/join/action"
ZONE_JOIN = "Microsoft.Network/privateDnsZones/join/action"
RECORD_TTL = 10  # what the zone group writes (the portal and `az` show TTL 10 on these records)
RESERVED_HOSTS = 4  # Azure keeps the first four addresses of every subnet (and the last one)


# --- the targets: group ids and the FQDNs each group id serves ----------------------------------------
# Sub-resources ("group ids") and public DNS names per type, from learn.microsoft.com
# azure/private-link/private-endpoint-overview ("Private link resource") and private-endpoint-dns
# ("Azure services DNS zone configuration"); a function of the target document, since some depend on it.

def _host(doc: Mapping[str, Any]) -> str:
    props = doc.get("properties") or {}
    return str(props.get("customSubDomainName") or doc.get("name") or "").lower()


def _region(doc: Mapping[str, Any]) -> str:
    return str(doc.get("location") or "").replace(" ", "").lower()


def _cognitive(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    host, kind = _host(doc), str(doc.get("kind") or "")
    if kind == "OpenAI":
        names = [f"{host}.openai.azure.com"]
    elif kind == "AIServices":
        names = [f"{host}.cognitiveservices.azure.com", f"{host}.openai.azure.com", f"{host}.services.ai.azure.com"]
    else:
        names = [f"{host}.cognitiveservices.azure.com"]
    return {"account": names}


def _search(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"searchService": [f"{_host(doc)}.search.windows.net"]}


_COSMOS_APIS = {"MongoDB": "mongo", "Cassandra": "cassandra", "Gremlin": "gremlin", "Table": "table"}
_COSMOS_CAPABILITIES = {"EnableCassandra": "Cassandra", "EnableGremlin": "Gremlin", "EnableTable": "Table"}


def _cosmos(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    name = str(doc.get("name") or "").lower()
    props = doc.get("properties") or {}
    regions = [str(loc.get("locationName") or "").replace(" ", "").lower()
               for loc in props.get("locations") or [] if isinstance(loc, Mapping)] or [_region(doc)]
    out = {"Sql": [f"{name}.documents.azure.com", *(f"{name}-{r}.documents.azure.com" for r in regions if r)]}
    apis = {c.get("name") for c in props.get("capabilities") or [] if isinstance(c, Mapping)}
    wanted = {_COSMOS_CAPABILITIES[c] for c in apis if c in _COSMOS_CAPABILITIES}
    if doc.get("kind") == "MongoDB":
        wanted.add("MongoDB")
    for api in sorted(wanted):
        sub = _COSMOS_APIS[api]
        out[api] = [f"{name}.{sub}.cosmos.azure.com", *(f"{name}-{r}.{sub}.cosmos.azure.com" for r in regions if r)]
    return out


def _vault(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"vault": [f"{str(doc.get('name') or '').lower()}.vault.azure.net"]}


def _workspace(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    props = doc.get("properties") or {}
    wid, region, name = str(props.get("workspaceId") or uuid.uuid5(uuid.NAMESPACE_URL, str(doc.get("id")))), \
        _region(doc), str(doc.get("name") or "").lower()
    return {"amlworkspace": [f"{wid}.workspace.{region}.api.azureml.ms",
                             f"{wid}.workspace.{region}.cert.api.azureml.ms",
                             f"ml-{name}-{region}-{wid}.{region}.notebooks.azure.net",
                             f"*.{wid}.inference.{region}.api.azureml.ms"]}


_STORAGE_GROUPS = ("blob", "blob_secondary", "file", "queue", "queue_secondary", "table", "table_secondary",
                   "web", "web_secondary", "dfs", "dfs_secondary")


def _storage(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    name = str(doc.get("name") or "").lower()
    out = {}
    for group in _STORAGE_GROUPS:
        base, _, secondary = group.partition("_")
        out[group] = [f"{name}{'-secondary' if secondary else ''}.{base}.core.windows.net"]
    return out


def _registry(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    name = str(doc.get("name") or "").lower()
    props = doc.get("properties") or {}
    regions = [_region(doc)] + [str(r).lower() for r in props.get("replicationRegions") or []]
    return {"registry": [f"{name}.azurecr.io", *(f"{name}.{r}.data.azurecr.io" for r in regions if r)]}


def _name(doc: Mapping[str, Any]) -> str:
    return str(doc.get("name") or "").lower()


def _site(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    # web …/2024-11-01/examples/GetWebApp.json enabledHostNames: the app and its SCM (Kudu) site, under the cloud's
    # suffix (azurewebsites.us in Azure Government); the default ones when the document names none. A custom
    # domain is not served by the endpoint's zone.
    names = [str(h).lower() for h in (doc.get("properties") or {}).get("enabledHostNames") or []
             if ".azurewebsites." in str(h) or ".chinacloudsites." in str(h)]
    return {"sites": names or [f"{_name(doc)}.azurewebsites.net", f"{_name(doc)}.scm.azurewebsites.net"]}


def _factory(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    # MicrosoftDocs/azure-docs articles/data-factory/data-factory-private-link.md: {name}.{region}.datafactory.azure.net
    # for the data plane; the portal group serves ADF Studio (adf.azure.com, no per-factory name: no record here)
    return {"dataFactory": [f"{_name(doc)}.{_region(doc)}.datafactory.azure.net"], "portal": ["adf.azure.com"]}


def _hsm(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"managedhsm": [f"{_name(doc)}.managedhsm.azure.net"]}


def _databricks(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    # databricks …/2024-05-01/examples/WorkspaceGet.json workspaceUrl adb-{id}.{n}.azuredatabricks.net
    url = str((doc.get("properties") or {}).get("workspaceUrl") or f"adb-{_name(doc)}.0.azuredatabricks.net")
    return {"databricks_ui_api": [url.lower()],
            "browser_authentication": [f"{_region(doc)}.pl-auth.azuredatabricks.net"]}


def _synapse(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    # synapse …/2021-06-01/examples/GetWorkspace.json connectivityEndpoints (sql, sqlOnDemand, dev)
    name = _name(doc)
    return {"Sql": [f"{name}.sql.azuresynapse.net"], "SqlOnDemand": [f"{name}-ondemand.sql.azuresynapse.net"],
            "Dev": [f"{name}.dev.azuresynapse.net"]}


def _storage_sync(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"afs": [f"{_name(doc)}.{_region(doc)}.afs.azure.net"]}


def _monitor_scope(doc: Mapping[str, Any]) -> dict[str, list[str]]:
    # MicrosoftDocs/azure-docs articles/azure-monitor/logs/private-link-configure.md: the global endpoints every
    # scope's endpoint answers for (workspace-specific oms/ods/agentsvc names come with linked workspaces)
    return {"azuremonitor": ["api.monitor.azure.com", "global.in.ai.monitor.azure.com",
                             "scadvisorcontent.blob.core.windows.net"]}


TARGETS: dict[str, Callable[[Mapping[str, Any]], dict[str, list[str]]]] = {
    "microsoft.cognitiveservices/accounts": _cognitive,
    "microsoft.search/searchservices": _search,
    "microsoft.documentdb/databaseaccounts": _cosmos,
    "microsoft.keyvault/vaults": _vault,
    "microsoft.machinelearningservices/workspaces": _workspace,
    "microsoft.storage/storageaccounts": _storage,
    "microsoft.containerregistry/registries": _registry,
    "microsoft.web/sites": _site,
    "microsoft.datafactory/factories": _factory,
    "microsoft.keyvault/managedhsms": _hsm,
    "microsoft.databricks/workspaces": _databricks,
    "microsoft.synapse/workspaces": _synapse,
    "microsoft.storagesync/storagesyncservices": _storage_sync,
    "microsoft.insights/privatelinkscopes": _monitor_scope,
}
# Types whose GET does not embed privateEndpointConnections: they are a list of their own (GET
# {target}/privateEndpointConnections; web …/2024-11-01 WebApps_GetPrivateEndpointConnectionList, datafactory
# …/2018-06-01 PrivateEndPointConnections_ListByFactory). The fake keeps them in the document and leaves them
# out when the document is read (``as_read``).
LISTED_APART = frozenset({"microsoft.web/sites", "microsoft.datafactory/factories"})
CASE_SENSITIVE_GROUPS = frozenset({"microsoft.storage/storageaccounts"})


def group_fqdns(target: Mapping[str, Any]) -> dict[str, list[str]]:
    """The group ids a target document offers, each with the public FQDNs its endpoint serves."""
    fn = TARGETS.get(ids.type_key(str(target.get("type") or ids.resource_type(str(target.get("id", ""))))))
    return fn(target) if fn is not None else {}


def member_name(target: Mapping[str, Any], group: str, fqdn: str) -> str:
    """The private link resource member an FQDN belongs to: each member gets its own private IP (a Cosmos DB
    account's global and regional endpoints, a registry's login server and its regional data endpoints, a
    workspace's API and its notebooks; the other types serve every name from one address)."""
    ttype = ids.type_key(str(target.get("type") or ids.resource_type(str(target.get("id", "")))))
    host = fqdn.split(".", 1)[0]
    if ttype == "microsoft.documentdb/databaseaccounts":
        return host
    if ttype == "microsoft.containerregistry/registries":
        parts = fqdn.split(".")
        return f"registry_data_{parts[1]}" if ".data." in fqdn else "registry"
    if ttype == "microsoft.machinelearningservices/workspaces" and ".notebooks." in fqdn:
        return "notebook"
    return "default"


def record_name(zone: str, fqdn: str) -> str | None:
    """The A record set a zone group writes for ``fqdn`` in the private zone ``zone``, or None when the
    name is not the zone's: ``privatelink.`` + the public suffix (Key Vault's ``vault.`` answers from
    ``privatelink.vaultcore.``, private-endpoint-dns)."""
    zone, fqdn = zone.lower().rstrip("."), fqdn.lower().rstrip(".")
    if not zone.startswith("privatelink."):
        return None
    suffix = zone[len("privatelink."):]
    suffixes = [suffix]
    if suffix.startswith("vaultcore."):
        suffixes.append("vault." + suffix[len("vaultcore."):])
    for s in suffixes:
        if fqdn.endswith("." + s):
            return fqdn[: -len(s) - 1]
    return None


# --- state -------------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Op:
    kind: str  # "endpoint", "zonegroup", "delete"
    resource_id: str
    polls_left: int
    api_version: str
    fail: tuple[str, str] | None = None  # (code, message) the operation ends with
    done: bool = False


@dataclass(slots=True)
class _Fault:
    times: int
    code: str = ""
    message: str = ""


@dataclass(slots=True)
class _Endpoint:
    """What the fake remembers of an endpoint beyond its document."""

    ips: dict[str, str] = field(default_factory=dict)  # fqdn → private IP
    nic_id: str = ""
    connections: list[tuple[str, str]] = field(default_factory=list)  # (target id, connection id on the target)
    key: tuple[Any, ...] = ()


_Planned = tuple[dict[str, Any], list[str], bool, Mapping[str, Any]]  # (target doc, group ids, manual, as given)


@dataclass(slots=True)
class _EndpointRequest:
    location: str
    props: dict[str, Any]
    subnet_id: str
    subnet: dict[str, Any] | None
    planned: list[_Planned]


class PrivateLink:
    """The Private Link part of a :class:`FakeArm` (``arm.private_link``)."""

    def __init__(self, arm: FakeArm, *, reply: Callable[..., Exception],
                 error: Callable[..., Exception]) -> None:
        self.arm = arm
        self._reply = reply
        self._error = error
        self.provisioning_polls = 1  # InProgress answers before an operation ends
        self._ops: dict[str, _Op] = {}
        self._endpoints: dict[str, _Endpoint] = {}
        self._used_ips: dict[str, set[str]] = {}
        self._fail_endpoint: list[_Fault] = []
        self._pending: list[_Fault] = []
        self._fail_group: list[_Fault] = []
        self._seq = itertools.count(1)

    # -- faults -------------------------------------------------------------------------------------
    def fail_endpoint_provisioning(self, *, code: str = "PrivateEndpointProvisioningFailed",
                                   message: str = "Private endpoint provisioning failed.", times: int = 1) -> None:
        """The next ``times`` endpoint creations are accepted (201) but their operation ends ``Failed`` with
        ``code``/``message``: the endpoint reads ``provisioningState: Failed`` and its connection is removed
        from the target again (nothing carries traffic)."""
        with self.arm._lock:
            self._fail_endpoint.append(_Fault(times, code, message))

    def keep_pending(self, *, times: int = 1) -> None:
        """The next ``times`` auto-approved connections land Pending ("Awaiting approval") even though the
        caller may approve: the target's owner approves by hand (or never). A ``PUT`` of the connection
        with status Approved approves it."""
        with self.arm._lock:
            self._pending.append(_Fault(times))

    def fail_zone_group(self, *, code: str = "InternalServerError",
                        message: str = "An error occurred while creating the private DNS zone group.",
                        times: int = 1) -> None:
        """The next ``times`` zone group writes are accepted but their operation ends ``Failed``: the group
        reads ``provisioningState: Failed`` and no A record is written."""
        with self.arm._lock:
            self._fail_group.append(_Fault(times, code, message))

    @staticmethod
    def _take(faults: list[_Fault]) -> _Fault | None:
        if not faults:
            return None
        fault = faults[0]
        fault.times -= 1
        if fault.times <= 0:
            faults.pop(0)
        return fault

    # -- reading state ------------------------------------------------------------------------------
    @staticmethod
    def as_read(doc: dict[str, Any]) -> dict[str, Any]:
        """A GET's copy of ``doc``: without its connections where the type lists them apart (``LISTED_APART``)."""
        if ids.type_key(str(doc.get("type") or "")) in LISTED_APART and isinstance(doc.get("properties"), dict):
            doc["properties"].pop("privateEndpointConnections", None)
        return doc

    def connections(self, target_id: str) -> list[dict[str, Any]]:
        """The private endpoint connections embedded in a target document (copies)."""
        with self.arm._lock:
            doc = self.arm._find(target_id)
            items = ((doc or {}).get("properties") or {}).get("privateEndpointConnections") or []
            return [copy.deepcopy(c) for c in items if isinstance(c, dict)]

    def records(self, zone_id: str) -> dict[str, list[str]]:
        """The A record sets in a private DNS zone: record name → IPv4 addresses."""
        want = ids.key(zone_id) + "/a/"
        with self.arm._lock:
            out = {}
            for k, doc in self.arm._docs.items():
                if k.startswith(want):
                    out[str(doc["name"])] = [str(r.get("ipv4Address")) for r in
                                             (doc.get("properties") or {}).get("aRecords") or []]
            return out

    # -- dispatch -----------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: Any, caller: str | None, api_version: str) -> Any | None:
        """The reply for a Private Link request (raised or returned), or None for anything else."""
        rid = ids.parse(path)
        if method == "GET" and len(rid.types) == 2 and len(rid.names) == 1 and \
                rid.types[-1].lower() == CONNECTION_SEGMENT and ids.type_key(rid.type.rsplit("/", 1)[0]) in TARGETS:
            target_id = path.rstrip("/").rsplit("/", 1)[0]
            if self.arm._find(target_id) is None:
                return None  # the generic 404
            return self._reply(200, {"value": self.connections(target_id)})
        if not rid.types or len(rid.types) != len(rid.names) or not rid.namespace:  # (a provider: no types)
            return None
        rtype = ids.type_key(rid.type)
        if rtype == PRIVATE_ENDPOINTS and method in ("PUT", "DELETE"):
            return self._put_endpoint(path, body, caller, api_version) if method == "PUT" \
                else self._delete_endpoint(path, api_version)
        if rtype == ZONE_GROUPS and method in ("PUT", "DELETE"):
            return self._put_group(path, body, caller, api_version) if method == "PUT" \
                else self._delete_group(path, api_version)
        if rid.types[-1].lower() == CONNECTION_SEGMENT and len(rid.types) == 2:
            parent = rid.parent()
            if parent is not None and ids.type_key(parent.type) in TARGETS:
                return self._connection(method, path, parent.id, body, caller)
        return None

    def operation(self, op_id: str) -> Any | None:
        """A poll of one of this module's operations (None: not one of them)."""
        op = self._ops.get(op_id)
        if op is None:
            return None
        if op.polls_left > 0 and not op.done:
            op.polls_left -= 1
            if op.kind == "delete":
                return self._reply(202, None, {"Location": self._op_url(op_id, op.api_version), "Retry-After": "0"})
            return self._reply(200, {"status": "InProgress"}, {"Retry-After": "0"})
        if not op.done:
            op.done = True
            self._finish(op)
        if op.kind == "delete":
            return self._reply(204)
        if op.fail is not None:
            return self._reply(200, {"status": "Failed", "error": {"code": op.fail[0], "message": op.fail[1]}})
        return self._reply(200, {"status": "Succeeded"})

    def _new_op(self, kind: str, resource_id: str, api_version: str, fail: tuple[str, str] | None = None) -> str:
        op_id = f"pl{next(self._seq)}-{uuid.uuid4().hex[:8]}"
        self._ops[op_id] = _Op(kind, resource_id, self.provisioning_polls if kind != "delete" else 1, api_version,
                               fail)
        return op_id

    def _op_url(self, op_id: str, api_version: str) -> str:
        return f"{self.arm.base_url}/_operations/{op_id}?api-version={api_version}"

    def _async(self, op_id: str, api_version: str) -> dict[str, str]:
        return {"Azure-AsyncOperation": self._op_url(op_id, api_version), "Retry-After": "0"}

    # -- authorization ------------------------------------------------------------------------------
    def may(self, caller: str | None, action: str, scope: str) -> bool:
        """Whether ``caller`` may perform ``action`` at ``scope`` (see the module docstring)."""
        from remediator.testing.fake_arm import ROLE_ACTIONS, ROLE_ASSIGNMENTS, _assignment_scope, _role_guid  # noqa: PLC0415

        enforced = self.arm._enforced
        if enforced is None:
            return True
        principal = enforced[0]
        if caller not in (None, principal):
            return True
        want = action.lower()
        for doc in self.arm._docs.values():
            if ids.type_key(str(doc.get("type", ""))) != ROLE_ASSIGNMENTS:
                continue
            props = doc.get("properties") or {}
            if str(props.get("principalId", "")).lower() != principal:
                continue
            at = _assignment_scope(doc)
            if at != "/" and not ids.is_under(scope, at):
                continue
            actions, not_actions = ROLE_ACTIONS.get(_role_guid(props.get("roleDefinitionId")), ((), ()))
            if any(fnmatch.fnmatchcase(want, a.lower()) for a in actions) and \
                    not any(fnmatch.fnmatchcase(want, n.lower()) for n in not_actions):
                return True
        return False

    def _require(self, caller: str | None, action: str, scope: str) -> None:
        if not self.may(caller, action, scope):
            who = caller or (self.arm._enforced or ("",))[0]
            raise self._error(403, "AuthorizationFailed",
                              f"The client '{who}' with object id '{who}' does not have authorization to perform "
                              f"action '{action}' over scope '{scope}' or the scope is invalid. If access was "
                              "recently granted, please refresh your credentials.")

    def _require_linked(self, caller: str | None, action: str, scope: str,
                        linked: Iterable[tuple[str, str]]) -> None:
        for linked_action, linked_scope in linked:
            if not self.may(caller, linked_action, linked_scope):
                who = caller or (self.arm._enforced or ("",))[0]
                raise self._error(403, "LinkedAuthorizationFailed",
                                  f"The client '{who}' with object id '{who}' has permission to perform action "
                                  f"'{action}' on scope '{scope}'; however, it does not have permission to perform "
                                  f"action '{_named(linked_action)}' on the linked scope(s) '{linked_scope}' or the "
                                  "linked scope(s) are invalid.")

    # -- private endpoints --------------------------------------------------------------------------
    def _bad(self, code: str, message: str) -> Exception:
        return self._error(400, code, message)

    def _put_endpoint(self, path: str, body: Any, caller: str | None, api_version: str) -> Any:
        arm = self.arm
        existing = arm._find(path)
        pe_id = str(existing["id"]) if existing else path
        req = self._validate_endpoint(pe_id, body)
        action = "Microsoft.Network/privateEndpoints/write"
        self._require(caller, action, pe_id)
        linked = [(SUBNET_JOIN, req.subnet_id)]
        linked += [(f"{ids.resource_type(str(t['id']))}/privateEndpointConnectionsApproval/action", str(t["id"]))
                   for t, _, is_manual, _ in req.planned if not is_manual]
        self._require_linked(caller, action, pe_id, linked)

        key = (*((ids.key(str(t["id"])), tuple(g), m) for t, g, m, _ in req.planned), ids.key(req.subnet_id))
        state = self._endpoints.get(ids.key(pe_id))
        failed = existing is not None and (existing.get("properties") or {}).get("provisioningState") == "Failed"
        if existing is not None and state is not None and state.key == key and not failed:
            # the same endpoint again (a retried PUT): nothing new is created, nothing is approved twice
            if "tags" in body:
                existing["tags"] = copy.deepcopy(body["tags"])
            existing["etag"] = _etag()
            op = self._new_op("endpoint", pe_id, api_version)
            return self._reply(200, copy.deepcopy(existing), self._async(op, api_version))
        if existing is not None:
            self._release(pe_id)
        rid = ids.parse(pe_id)
        state = _Endpoint(key=key, nic_id=f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}/"
                                          f"providers/Microsoft.Network/networkInterfaces/{rid.name}.nic.{uuid.uuid4()}")
        self._endpoints[ids.key(pe_id)] = state
        conns: dict[str, list[dict[str, Any]]] = {"privateLinkServiceConnections": [],
                                                  "manualPrivateLinkServiceConnections": []}
        dns_configs: list[dict[str, Any]] = []
        nic_configs: list[dict[str, Any]] = []
        for i, planned in enumerate(req.planned):
            entry = self._connect(pe_id, i, planned, req, state, out=(dns_configs, nic_configs))
            kind = "manualPrivateLinkServiceConnections" if planned[2] else "privateLinkServiceConnections"
            conns[kind].append(entry)
        props = req.props
        doc: dict[str, Any] = {
            "id": pe_id, "name": rid.name, "type": "Microsoft.Network/privateEndpoints", "location": req.location,
            **({"tags": copy.deepcopy(body["tags"])} if isinstance(body.get("tags"), dict) else {}),
            "etag": _etag(),
            "properties": {
                "provisioningState": "Updating",
                "resourceGuid": str(uuid.uuid4()),
                **conns,
                "subnet": {"id": req.subnet_id},
                "networkInterfaces": [{"id": state.nic_id}],
                "customDnsConfigs": dns_configs,
                "applicationSecurityGroups": copy.deepcopy(props.get("applicationSecurityGroups") or []),
                "ipConfigurations": copy.deepcopy(props.get("ipConfigurations") or []),
                **({"customNetworkInterfaceName": props["customNetworkInterfaceName"]}
                   if props.get("customNetworkInterfaceName") else {}),
            },
        }
        arm._put(doc, stamp=False)
        arm._put({"id": state.nic_id, "name": state.nic_id.rsplit("/", 1)[-1],
                  "type": "Microsoft.Network/networkInterfaces", "location": req.location, "etag": _etag(),
                  "properties": {"provisioningState": "Succeeded", "ipConfigurations": nic_configs,
                                 "privateEndpoint": {"id": pe_id}, "nicType": "Standard",
                                 "dnsSettings": {"dnsServers": [], "appliedDnsServers": []}}}, stamp=False)
        fault = self._take(self._fail_endpoint)
        op = self._new_op("endpoint", pe_id, api_version, (fault.code, fault.message) if fault else None)
        return self._reply(201 if existing is None else 200, copy.deepcopy(doc), self._async(op, api_version))

    def _validate_endpoint(self, pe_id: str, body: Any) -> _EndpointRequest:
        """The endpoint's body checked as the Network RP checks it (see the module docstring)."""
        if not isinstance(body, dict):
            raise self._bad("InvalidRequestContent", "The request content must be a JSON object.")
        location = str(body.get("location") or "")
        if not location:
            raise self._bad("LocationRequired", "The location property is required for this definition.")
        props: dict[str, Any] = body["properties"] if isinstance(body.get("properties"), dict) else {}
        subnet_ref = props.get("subnet")
        subnet_id = str(subnet_ref.get("id") or "") if isinstance(subnet_ref, dict) else ""
        subnet_rid = ids.parse(subnet_id) if subnet_id.startswith("/subscriptions/") else None
        vnet_rid = subnet_rid.parent() if subnet_rid is not None else None
        if subnet_rid is None or vnet_rid is None or \
                ids.type_key(subnet_rid.type) != "microsoft.network/virtualnetworks/subnets":
            raise self._bad("LinkedInvalidPropertyId",
                            f"Property id '{subnet_id}' at path 'properties.subnet.id' is invalid. Expect fully "
                            "qualified resource Id that start with '/subscriptions/{subscriptionId}' or "
                            "'/providers/{resourceProviderNamespace}/'.")
        subnet = self.arm._find(subnet_id)
        vnet = self.arm._find(vnet_rid.id)
        same_place = (subnet_rid.subscription_id or "").lower() == (ids.parse(pe_id).subscription_id or "").lower() \
            and vnet is not None and _same_region(str(vnet.get("location") or ""), location)
        if subnet is None or not same_place:
            raise self._bad("InvalidResourceReference",
                            f"Resource {subnet_id} referenced by resource {pe_id} was not found. Please make sure "
                            "that the referenced resource exists, and that both resources are in the same region.")
        auto = [c for c in props.get("privateLinkServiceConnections") or [] if isinstance(c, dict)]
        manual = [c for c in props.get("manualPrivateLinkServiceConnections") or [] if isinstance(c, dict)]
        if not auto and not manual:
            raise self._bad("PrivateEndpointWithoutConnections",
                            f"Private endpoint {pe_id} must have one privateLinkServiceConnections or "
                            "manualPrivateLinkServiceConnections entry.")
        planned = [self._check_connection(pe_id, c, False) for c in auto] + \
            [self._check_connection(pe_id, c, True) for c in manual]
        return _EndpointRequest(location, props, subnet_id, subnet, planned)

    def _connect(self, pe_id: str, index: int, planned: _Planned, req: _EndpointRequest, state: _Endpoint, *,
                 out: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, Any]:
        """One connection: the endpoint's entry (returned), its IPs and DNS names (appended to ``out``: the
        endpoint's customDnsConfigs and its NIC's ipConfigurations), the target's entry."""
        dns_configs, nic_configs = out
        target, groups, is_manual, given = planned
        name = ids.parse(pe_id).name
        cname = str(given.get("name") or f"{name}_{index}")
        given_props: Mapping[str, Any] = given["properties"] if isinstance(given.get("properties"), Mapping) else {}
        if is_manual:
            cstate = {"status": "Pending", "description": str(given_props.get("requestMessage") or ""),
                      "actionsRequired": "None"}
        elif self._take(self._pending) is not None:
            cstate = {"status": "Pending", "description": "Awaiting approval", "actionsRequired": "None"}
        else:
            cstate = {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"}
        kind = "manualPrivateLinkServiceConnections" if is_manual else "privateLinkServiceConnections"
        entry = {
            "id": f"{pe_id}/{kind}/{cname}", "name": cname,
            "type": f"Microsoft.Network/privateEndpoints/{kind}", "etag": _etag(),
            "properties": {
                "provisioningState": "Updating",
                "privateLinkServiceId": str(target["id"]),
                "groupIds": list(groups),
                **({"requestMessage": given_props["requestMessage"]} if given_props.get("requestMessage") else {}),
                "privateLinkServiceConnectionState": dict(cstate),
            },
        }
        offered = group_fqdns(target)
        canonical = [_canonical_group(target, g) for g in groups]
        for group in canonical:
            members: dict[str, list[str]] = {}
            for fqdn in offered.get(group, []):
                members.setdefault(member_name(target, group, fqdn), []).append(fqdn)
            for member, names in members.items():
                ip = self._allocate(req.subnet_id, req.subnet)
                for fqdn in names:
                    state.ips[fqdn] = ip
                    dns_configs.append({"fqdn": fqdn, "ipAddresses": [ip]})
                nic_configs.append({
                    "name": f"privateEndpointIpConfig.{uuid.uuid4()}",
                    "properties": {"privateIPAddress": ip, "privateIPAllocationMethod": "Dynamic",
                                   "subnet": {"id": req.subnet_id},
                                   "privateLinkConnectionProperties": {"groupId": group, "requiredMemberName": member,
                                                                       "fqdns": names}}})
        conn_name = f"{name}.{uuid.uuid4()}"
        target_conn = {
            "id": f"{target['id']}/privateEndpointConnections/{conn_name}", "name": conn_name,
            "type": f"{ids.resource_type(str(target['id']))}/privateEndpointConnections",
            "properties": {"privateEndpoint": {"id": pe_id}, "groupIds": canonical,
                           "privateLinkServiceConnectionState": dict(cstate), "provisioningState": "Succeeded"},
        }
        tprops = target.setdefault("properties", {})
        if not isinstance(tprops.get("privateEndpointConnections"), list):
            tprops["privateEndpointConnections"] = []
        tprops["privateEndpointConnections"].append(target_conn)
        self.arm._stamp(target)
        state.connections.append((str(target["id"]), str(target_conn["id"])))
        return entry

    def _check_connection(self, pe_id: str, conn: Mapping[str, Any], manual: bool) -> _Planned:
        props: Mapping[str, Any] = conn["properties"] if isinstance(conn.get("properties"), Mapping) else {}
        cid = f"{pe_id}/{'manualPrivateLinkServiceConnections' if manual else 'privateLinkServiceConnections'}/" \
              f"{conn.get('name') or ''}"
        target_id = str(props.get("privateLinkServiceId") or "")
        groups = [str(g) for g in props.get("groupIds") or [] if isinstance(g, str) and g]
        if not target_id:
            raise self._bad("MissingParameterOnPrivateLinkServiceConnection",
                            f"Private link service connection {cid} is missing required parameter "
                            "'private link service id'.")
        if not groups:
            raise self._bad("MissingParameterOnPrivateLinkServiceConnection",
                            f"Private link service connection {cid} is missing required parameter 'group Id'.")
        target = self.arm._find(target_id)
        if target is None:
            trid = ids.parse(target_id)
            where = f" under resource group '{trid.resource_group}'" if trid.resource_group else ""
            raise self._error(404, "ResourceNotFound", f"The Resource '{trid.type}/{trid.name}'{where} was not found.")
        if len(groups) > 1:
            raise self._bad("OnlyOneGroupIdPermitted",
                            f"Private link service connection {cid} has the following group Ids: {', '.join(groups)}. "
                            f"Only one group Id is permitted when connecting to a first-party resource ({target_id}).")
        ttype = ids.type_key(str(target.get("type") or ids.resource_type(target_id)))
        offered = group_fqdns(target)
        if ttype not in TARGETS or _canonical_group(target, groups[0]) not in offered:
            raise self._bad("InvalidValuesForRequestParameters",
                            f"Call to {ids.resource_type(target_id)} failed. Error message: Values for request "
                            f"parameters are invalid: GroupId: {groups[0]}.")
        if ttype == "microsoft.containerregistry/registries":
            sku = str((target.get("sku") or {}).get("name") or "")
            if sku.lower() != "premium":
                raise self._bad("PrivateEndpointNotSupportedForSku",
                                f"Private endpoints are supported by Premium registries only; registry "
                                f"'{target.get('name')}' is {sku or 'of an unknown SKU'}.")
        return target, groups, manual, conn

    def _allocate(self, subnet_id: str, subnet: Mapping[str, Any] | None) -> str:
        props = (subnet or {}).get("properties") or {}
        prefix = props.get("addressPrefix") or next(iter(props.get("addressPrefixes") or []), None) or "10.0.0.0/24"
        net = ipaddress.ip_network(str(prefix), strict=False)
        used = self._used_ips.setdefault(ids.key(subnet_id), set())
        for i, host in enumerate(net.hosts(), start=1):
            if i < RESERVED_HOSTS:
                continue
            if str(host) not in used:
                used.add(str(host))
                return str(host)
        raise self._bad("SubnetIsFull", f"Subnet {subnet_id} has no free address for a private endpoint.")

    def _release(self, pe_id: str) -> None:
        """Remove what the endpoint put elsewhere: its connections on the targets, its NIC, its IPs, its
        zone groups and their records."""
        arm = self.arm
        state = self._endpoints.pop(ids.key(pe_id), None)
        if state is None:
            return
        for target_id, conn_id in state.connections:
            self._drop_target_connection(target_id, conn_id)
        if state.nic_id:
            arm._docs.pop(ids.key(state.nic_id), None)
        doc = arm._find(pe_id)
        subnet_id = str(((doc or {}).get("properties") or {}).get("subnet", {}).get("id") or "")
        used = self._used_ips.get(ids.key(subnet_id), set())
        used.difference_update(state.ips.values())
        for k in [k for k, d in arm._docs.items()
                  if ids.type_key(str(d.get("type", ""))) == ZONE_GROUPS and k.startswith(ids.key(pe_id) + "/")]:
            self._remove_records(arm._docs[k])
            arm._docs.pop(k, None)

    def _drop_target_connection(self, target_id: str, conn_id: str) -> None:
        target = self.arm._find(target_id)
        if target is None:
            return
        items = (target.get("properties") or {}).get("privateEndpointConnections")
        if isinstance(items, list):
            kept = [c for c in items if not (isinstance(c, dict) and ids.same(str(c.get("id", "")), conn_id))]
            if len(kept) != len(items):
                target["properties"]["privateEndpointConnections"] = kept
                self.arm._stamp(target)

    def _delete_endpoint(self, path: str, api_version: str) -> Any:
        doc = self.arm._find(path)
        if doc is None:
            return self._reply(204)
        self._release(path)
        self.arm._docs.pop(ids.key(path), None)
        op = self._new_op("delete", path, api_version)
        return self._reply(202, None, {"Location": self._op_url(op, api_version), "Retry-After": "0"})

    def _finish(self, op: _Op) -> None:
        doc = self.arm._find(op.resource_id)
        if doc is None or op.kind == "delete":
            return
        props = doc.setdefault("properties", {})
        state = "Failed" if op.fail is not None else "Succeeded"
        props["provisioningState"] = state
        doc["etag"] = _etag()
        if op.kind == "endpoint":
            for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
                for c in props.get(key) or []:
                    c.setdefault("properties", {})["provisioningState"] = state
            if op.fail is not None:
                pe_state = self._endpoints.get(ids.key(op.resource_id))
                for target_id, conn_id in pe_state.connections if pe_state else []:
                    self._drop_target_connection(target_id, conn_id)
                if pe_state is not None:
                    pe_state.connections = []
        elif op.kind == "zonegroup" and op.fail is None:
            self._write_records(doc)

    # -- target connections -------------------------------------------------------------------------
    def _connection(self, method: str, path: str, target_id: str, body: Any, caller: str | None) -> Any:
        arm = self.arm
        target = arm._find(target_id)
        if target is None:
            trid = ids.parse(target_id)
            raise self._error(404, "ResourceNotFound",
                              f"The Resource '{trid.type}/{trid.name}' under resource group '{trid.resource_group}' "
                              "was not found.")
        items = (target.get("properties") or {}).get("privateEndpointConnections") or []
        conn = next((c for c in items if isinstance(c, dict) and ids.same(str(c.get("id", "")), path)), None)
        if method == "GET":
            if conn is None:
                raise self._error(404, "PrivateEndpointConnectionNotFound",
                                  f"Private endpoint connection '{path.rsplit('/', 1)[-1]}' was not found.")
            return self._reply(200, copy.deepcopy(conn))
        if method == "DELETE":
            if conn is None:
                return self._reply(204)
            self._drop_target_connection(target_id, path)
            self._mirror(conn, {"status": "Disconnected", "description": "Removed by the resource owner.",
                                "actionsRequired": "None"}, forget=True)
            return self._reply(200)
        if method != "PUT":
            return None
        if conn is None:
            raise self._error(404, "PrivateEndpointConnectionNotFound",
                              f"Private endpoint connection '{path.rsplit('/', 1)[-1]}' was not found.")
        self._require(caller, f"{ids.resource_type(target_id)}/privateEndpointConnections/write", path)
        props = body.get("properties") if isinstance(body, dict) else None
        new = (props or {}).get("privateLinkServiceConnectionState") if isinstance(props, dict) else None
        status = str((new or {}).get("status") or "") if isinstance(new, dict) else ""
        if status not in ("Approved", "Rejected", "Pending"):
            raise self._bad("InvalidRequestContent",
                            "properties.privateLinkServiceConnectionState.status must be Approved or Rejected.")
        old = str(conn["properties"]["privateLinkServiceConnectionState"].get("status") or "")
        if old == "Rejected" and status != "Rejected":
            raise self._bad("PrivateEndpointConnectionStatusNotPending",
                            "A rejected private endpoint connection cannot be approved; create a new one.")
        cstate = {"status": status, "description": str(new.get("description") or ""),  # type: ignore[union-attr]
                  "actionsRequired": str(new.get("actionsRequired") or "None")}  # type: ignore[union-attr]
        conn["properties"]["privateLinkServiceConnectionState"] = cstate
        arm._stamp(target)
        self._mirror(conn, cstate)
        return self._reply(200, copy.deepcopy(conn))

    def _mirror(self, conn: Mapping[str, Any], cstate: Mapping[str, Any], *, forget: bool = False) -> None:
        """Show a target-side state change on the endpoint's own connection."""
        pe_id = str(((conn.get("properties") or {}).get("privateEndpoint") or {}).get("id") or "")
        doc = self.arm._find(pe_id)
        if doc is None:
            return
        for key in ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections"):
            for c in (doc.get("properties") or {}).get(key) or []:
                c.setdefault("properties", {})["privateLinkServiceConnectionState"] = dict(cstate)
        doc["etag"] = _etag()
        state = self._endpoints.get(ids.key(pe_id))
        if forget and state is not None:
            state.connections = [(t, c) for t, c in state.connections if not ids.same(c, str(conn.get("id", "")))]

    # -- DNS zone groups ----------------------------------------------------------------------------
    def _put_group(self, path: str, body: Any, caller: str | None, api_version: str) -> Any:
        arm = self.arm
        rid = ids.parse(path)
        parent = rid.parent()
        pe = arm._find(parent.id) if parent is not None else None
        if pe is None or parent is None:
            raise self._error(404, "ParentResourceNotFound",
                              "Can not perform requested operation on nested resource. Parent resource "
                              f"'{parent.id if parent else path}' not found.")
        props = body.get("properties") if isinstance(body, dict) else None
        configs = (props or {}).get("privateDnsZoneConfigs") if isinstance(props, dict) else None
        if not isinstance(configs, list) or not configs:
            raise self._bad("InvalidRequestContent", "properties.privateDnsZoneConfigs must list at least one zone.")
        zones: list[tuple[str, str]] = []
        for i, cfg in enumerate(configs):
            zid = str(((cfg or {}).get("properties") or {}).get("privateDnsZoneId") or "") \
                if isinstance(cfg, dict) else ""
            zrid = ids.parse(zid) if zid.startswith("/subscriptions/") else None
            if zrid is None or ids.type_key(zrid.type) != "microsoft.network/privatednszones":
                raise self._bad("LinkedInvalidPropertyId",
                                f"Property id '{zid}' at path 'properties.privateDnsZoneConfigs[{i}].properties."
                                "privateDnsZoneId' is invalid. Expect fully qualified resource Id that start with "
                                "'/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.")
            if arm._find(zid) is None:
                raise self._bad("InvalidResourceReference",
                                f"Resource {zid} referenced by resource {path} was not found. Please make sure that "
                                "the referenced resource exists, and that both resources are in the same region.")
            zones.append((str(cfg.get("name") or zrid.name.replace(".", "-")), zid))
        action = "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/write"
        self._require(caller, action, path)
        self._require_linked(caller, action, path, [(ZONE_JOIN, z) for _, z in zones])
        existing = arm._find(path)
        if existing is not None:
            self._remove_records(existing)
        doc = {
            "id": str(existing["id"]) if existing else path, "name": rid.name,
            "type": "Microsoft.Network/privateEndpoints/privateDnsZoneGroups", "etag": _etag(),
            "properties": {
                "provisioningState": "Updating",
                "privateDnsZoneConfigs": [{"name": n, "id": f"{path}/privateDnsZoneConfigs/{n}",
                                           "properties": {"privateDnsZoneId": z, "recordSets": []}}
                                          for n, z in zones],
            },
        }
        arm._put(doc, stamp=False)
        fault = self._take(self._fail_group)
        op = self._new_op("zonegroup", path, api_version, (fault.code, fault.message) if fault else None)
        return self._reply(201 if existing is None else 200, copy.deepcopy(doc), self._async(op, api_version))

    def _delete_group(self, path: str, api_version: str) -> Any:
        doc = self.arm._find(path)
        if doc is None:
            return self._reply(204)
        self._remove_records(doc)
        self.arm._docs.pop(ids.key(path), None)
        op = self._new_op("delete", path, api_version)
        return self._reply(202, None, {"Location": self._op_url(op, api_version), "Retry-After": "0"})

    def _write_records(self, group: dict[str, Any]) -> None:
        arm = self.arm
        pe_id = str(group["id"]).rsplit("/privateDnsZoneGroups/", 1)[0]
        pe = arm._find(pe_id) or {}
        dns = [(str(c.get("fqdn") or ""), [str(ip) for ip in c.get("ipAddresses") or []])
               for c in (pe.get("properties") or {}).get("customDnsConfigs") or [] if isinstance(c, dict)]
        for cfg in group["properties"]["privateDnsZoneConfigs"]:
            zid = cfg["properties"]["privateDnsZoneId"]
            zone_name = ids.parse(zid).name
            sets = []
            for fqdn, ips in dns:
                rname = record_name(zone_name, fqdn)
                if rname is None or not ips:
                    continue
                record_id = f"{zid}/A/{rname}"
                arm._put({"id": record_id, "name": rname, "type": "Microsoft.Network/privateDnsZones/A",
                          "etag": str(uuid.uuid4()),
                          "properties": {"metadata": {"creator": "created by private endpoint "
                                                                 f"{ids.parse(pe_id).name} with resource guid "
                                                                 f"{(pe.get('properties') or {}).get('resourceGuid')}"},
                                         "ttl": RECORD_TTL, "fqdn": f"{rname}.{zone_name}.",
                                         "isAutoRegistered": False,
                                         "aRecords": [{"ipv4Address": ip} for ip in ips]}}, stamp=False)
                sets.append({"recordType": "A", "recordSetName": rname, "fqdn": f"{rname}.{zone_name}",
                             "provisioningState": "Succeeded", "ttl": RECORD_TTL, "ipAddresses": list(ips)})
            cfg["properties"]["recordSets"] = sets
            self._count_records(zid)

    def _remove_records(self, group: Mapping[str, Any]) -> None:
        for cfg in (group.get("properties") or {}).get("privateDnsZoneConfigs") or []:
            cprops = cfg.get("properties") or {}
            zid = str(cprops.get("privateDnsZoneId") or "")
            for rs in cprops.get("recordSets") or []:
                self.arm._docs.pop(ids.key(f"{zid}/A/{rs.get('recordSetName')}"), None)
            if zid:
                self._count_records(zid)

    def _count_records(self, zone_id: str) -> None:
        zone = self.arm._find(zone_id)
        if zone is None:
            return
        prefix = ids.key(zone_id) + "/"
        n = sum(1 for k, d in self.arm._docs.items() if k.startswith(prefix)
                and ids.type_key(str(d.get("type", ""))).startswith("microsoft.network/privatednszones/")
                and not ids.type_key(str(d.get("type", ""))).endswith("/virtualnetworklinks"))
        zone.setdefault("properties", {})["numberOfRecordSets"] = n + 1  # and the zone's SOA record


def _canonical_group(target: Mapping[str, Any], group: str) -> str:
    """The target's spelling of a group id (Storage accepts only its own, Azure/azure-cli#16750)."""
    ttype = ids.type_key(str(target.get("type") or ids.resource_type(str(target.get("id", "")))))
    offered = group_fqdns(target)
    if group in offered or ttype in CASE_SENSITIVE_GROUPS:
        return group
    return next((g for g in offered if g.lower() == group.lower()), group)


def _named(action: str) -> str:
    """An action as LinkedAuthorizationFailed names it: the approval action without its type, as ARM writes it
    ("…perform action 'PrivateEndpointConnectionsApproval/action' on the linked scope(s)…",
    MicrosoftDocs/azure-docs#96892), the others in full."""
    if action.lower().endswith("/privateendpointconnectionsapproval/action"):
        return "PrivateEndpointConnectionsApproval/action"
    return action


def _same_region(a: str, b: str) -> bool:
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'
