"""Build the private door, then close the public one: ``network.create-private-endpoint``.

Closing a resource to public networks is a fix only when a private path exists. With the deployment's
private-link settings (``private_link_subnets``: region or ``*`` → subnet id; ``private_dns_zones``:
zone name → ``privateDnsZones`` id; :class:`~remediator.actions.private_link_table.PrivateLinkSettings`)
one plan, one approval, builds that path in order:

1. for each sub-resource (group id, ``remediator.actions.private_link_table.group_ids``): ``create`` a
   ``Microsoft.Network/privateEndpoints`` resource in the subnet configured for the resource's region
   (in the resource's own group when it lives in the subnet's subscription, else in the subnet's group:
   "The private endpoint must be deployed in the same region and subscription as the virtual network",
   MicrosoftDocs/azure-docs ``articles/private-link/private-endpoint-overview.md``), with an
   automatically approved ``privateLinkServiceConnections`` entry (the executor holds the target's
   role, so ARM approves it: ``…/privateEndpointConnectionsApproval/action``);
2. ``create`` its ``privateDnsZoneGroups/default`` child with the configured zones for that group id
   (ARM writes the A records; a zone that is not configured is a warning naming the zone and the setting,
   and the endpoint is still planned);
3. ``update`` the resource: ``publicNetworkAccess`` Disabled (``disabled`` on Search, whose 2023-11-01
   API spells it in lower case) — applied only after steps 1 and 2 verified: the applier verifies each
   change before the next (``remediator.lifecycle.applying``), and an endpoint verifies only when its
   provisioning ``Succeeded`` and its connection is ``Approved``. Any failure stops the plan there; the
   reply and the audit say which change it stopped at and what was not applied.

A resource that already has an approved private endpoint gets step 3 alone; one whose public access is closed
already without an approved endpoint (nobody reaches it) gets steps 1 and 2 alone; without the settings the
plan refuses (naming them) rather than cut every client off. App Service apps and data factories do not embed
their connections in their documents: they are read from their own list (``LISTED_CONNECTIONS``).

``apply`` writes through azure-mgmt-network (``private_endpoints`` /
``private_dns_zone_groups.begin_create_or_update``, long-running, polled) and, for step 3, a PATCH by id at
the type's pinned API version (``remediator.azure.lro.write``) **without** ``If-Match``: creating the endpoint
adds a connection to the resource's document (and a new ETag), by design; the patch writes one property and
the plan binds to its old value.

Least privilege, each grant at exactly its scope (``grants``), all released after the write:

* the endpoint: Network Contributor on the subnet (``virtualNetworks/subnets/join/action``), Network
  Contributor on the endpoint's resource group (``privateEndpoints/write``: the endpoint does not exist
  yet, a grant needs an existing scope), and the target's own role on the target (approving the
  connection: Cognitive Services Contributor, Search Service Contributor, DocumentDB Account
  Contributor, Key Vault Contributor, Azure AI Administrator, Storage Account Contributor, the registry
  role of ``remediator.actions.profiles``, Website Contributor, Data Factory Contributor, Managed HSM
  contributor; tests/actions/test_private_link_roles.py pins each to its published Actions). Types whose
  connection only Contributor approves (Databricks, Synapse, Storage Sync, disk accesses) get no endpoint
  here; their endpoints' zone groups are ``network.create-private-dns-zone-group``'s, which needs no right on
  the target;
* the zone group: Network Contributor on the endpoint, Private DNS Zone Contributor on each zone
  (``privateDnsZones/join/action``);
* closing: the target's role on the target.

Undo deletes what the fix created (zone group, endpoint) and puts ``publicNetworkAccess`` back from
``before``, in reverse order, approved like any change.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from remediator import ids
from remediator._json import json_copy
from remediator.actions import private_endpoints
from remediator.actions.base import (
    REGISTRY,
    Action,
    ApplyResult,
    Example,
    GrantNeed,
    Params,
    PlanContext,
    Profile,
    label,
    no_items,
    register,
)
from remediator.actions.change import Change, without_etag
from remediator.actions.private_link_table import (
    COGNITIVE,
    ML_WORKSPACE,
    SEARCH,
    ZONE_TYPES,
    PrivateLinkSettings,
    group_ids,
    region_key,
    zone_names,
)
from remediator.actions.private_link_table import REGISTRY as REGISTRY_TYPE
from remediator.actions.private_link_table import WEB_APP as WEB_APP_TYPE
from remediator.actions.profiles import (
    COGNITIVE_ACCOUNT,
    CONTAINER_REGISTRY,
    COSMOS_ACCOUNT,
    DATA_FACTORY,
    KEY_VAULT,
    MANAGED_HSM,
    NETWORK_CONTRIBUTOR,
    PRIVATE_DNS_ZONE_CONTRIBUTOR,
    PRIVATE_DNS_ZONE_GROUP,
    PRIVATE_ENDPOINT,
    SEARCH_SERVICE,
    STORAGE_ACCOUNT,
    WEB_APP,
)
from remediator.actions.profiles import ML_WORKSPACE as ML_PROFILE
from remediator.azure.lro import write
from remediator.azure.reader import register_api_version
from remediator.azure.state import StateReader
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

PUBLIC = "publicNetworkAccess"
ZONE_GROUP = "default"  # the name the portal and the CLI give the one zone group of an endpoint
SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
SETTINGS_HINT = ("set private_link_subnets (region or \"*\": subnet id) and private_dns_zones (zone name: "
                 "privateDnsZones id) in the settings so the fix builds a private endpoint first "
                 "(try them offline: remediator plan --config FILE)")
TARGETS: dict[str, Profile] = {ids.type_key(p.type): p for p in (
    COGNITIVE_ACCOUNT, SEARCH_SERVICE, COSMOS_ACCOUNT, KEY_VAULT, ML_PROFILE, STORAGE_ACCOUNT, CONTAINER_REGISTRY,
    WEB_APP, DATA_FACTORY, MANAGED_HSM)}
for _p in (SEARCH_SERVICE, COSMOS_ACCOUNT):  # the live reader reads them at the version they are written with
    register_api_version(_p.type, _p.api_version)
# Types whose document does not embed their private endpoint connections: they are a list of their own (web
# …/stable/2024-11-01 WebApps_GetPrivateEndpointConnectionList, GET {site}/privateEndpointConnections; datafactory
# …/stable/2018-06-01 PrivateEndPointConnections_ListByFactory, GET {factory}/privateEndPointConnections; each
# answers {"value": [connection, …]} with privateEndpoint.id and privateLinkServiceConnectionState.status). Azure
# Policy reads them the same way: its App Service and Data Factory "should use private link" definitions are
# AuditIfNotExists on that child type (App Service/PrivateEndpoint_AINE.json, Data Factory/PrivateEndpoints_Audit.json).
LISTED_CONNECTIONS: dict[str, tuple[str, str]] = {
    ids.type_key(WEB_APP.type): ("privateEndpointConnections", WEB_APP.api_version),
    ids.type_key(DATA_FACTORY.type): ("privateEndPointConnections", DATA_FACTORY.api_version),
}
for _key, (_segment, _version) in LISTED_CONNECTIONS.items():
    register_api_version(f"{TARGETS[_key].type}/{_segment}", _version)
# DeployIfNotExists endpoint definitions whose group id is an assignment parameter: definition GUID → (parameter,
# its defaultValue), from Azure/azure-policy built-in-policies/policyDefinitions (Cosmos DB's b609e813 has one too,
# privateEndpointGroupId; here a Cosmos DB account's group id is its API, whatever an assignment says).
ASSIGNED_GROUP: dict[str, tuple[str, str]] = {
    "9f766f00-8d11-464e-80e1-4091d7874074": ("targetSubResource", "blob"),  # Storage/StorageAccountPrivate
    # EndpointEnabled_DINE.json (blob, blob_secondary, table, …, dfs_secondary)
    "496ca26b-f669-4322-a1ad-06b7b5e41882": ("groupId", "dataFactory"),  # Data Factory/PrivateEndpoints_DINE.json
}
# App Service plans whose apps cannot have a private endpoint (MicrosoftDocs/azure-docs articles/app-service/
# overview-private-endpoint.md: "Basic, Standard, PremiumV2, PremiumV3, IsolatedV2, Functions Premium"; a site's
# read-only properties.sku names its plan's tier: web …/2024-11-01/examples/GetWebApp.json "sku": "Standard")
NO_PRIVATE_ENDPOINT_SKUS = frozenset({"free", "shared", "dynamic"})
register_api_version("Microsoft.Network/privateDnsZones", "2024-06-01")  # privatedns/…/stable/2024-06-01
_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def _props(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = (doc or {}).get("properties")
    return value if isinstance(value, Mapping) else {}


def _closed_value(rtype: str) -> str:
    return "disabled" if ids.type_key(rtype) == SEARCH else "Disabled"


def public_closed(doc: Mapping[str, Any]) -> bool:
    """Whether the resource's public network access is off already (any spelling)."""
    return str(_props(doc).get(PUBLIC) or "Enabled").lower() == "disabled"


def endpoint_name(target: str, group_id: str) -> str:
    """``pe-<resource>-<group id>``, ARM-safe, at most 80 characters (deterministic: a re-plan names
    the same endpoint, so an approval binds to it)."""
    name = _NAME.sub("-", f"pe-{ids.parse(target).name}-{group_id.lower()}")
    return name[:80].rstrip(".-")


def _zone_config_name(zone_id: str) -> str:
    return ids.parse(zone_id).name.replace(".", "-")


class CreatePrivateEndpointParams(Params):
    storage_sub_resources: list[Literal["blob", "dfs", "file", "queue", "table", "web"]] = Field(
        default_factory=no_items)
    """Storage sub-resources to connect besides blob (and dfs when hierarchical namespace is on), one private
    endpoint each, e.g. [file, queue]. Ignored for the other types."""
    data_factory_sub_resources: list[Literal["portal"]] = Field(default_factory=no_items)
    """Data factory sub-resources to connect besides dataFactory (the pipelines' data plane): [portal] adds an
    endpoint for ADF Studio (privatelink.adf.azure.com). Ignored for the other types."""


@register
class CreatePrivateEndpoint(Action[CreatePrivateEndpointParams]):
    """Give a public AI-estate resource a private endpoint (with its DNS zone group), then close public access.

    One plan for the whole path; see the module docstring."""

    name = "network.create-private-endpoint"
    summary = ("Create a private endpoint (and its private DNS zone group) to the resource in the configured "
               "subnet, then disable public network access once the endpoint is approved")
    resource_types = tuple(p.type for p in TARGETS.values())
    role = NETWORK_CONTRIBUTOR
    extra_roles = (PRIVATE_DNS_ZONE_CONTRIBUTOR, *dict.fromkeys(p.role for p in TARGETS.values()))
    permissions = (*PRIVATE_ENDPOINT.permissions, *PRIVATE_DNS_ZONE_GROUP.permissions,
                   *(f"{p.type}/privateEndpointConnectionsApproval/action" for p in TARGETS.values()),
                   *(f"{p.type}/write" for p in TARGETS.values()))
    api_version = PRIVATE_ENDPOINT.api_version
    reversible = True
    example = Example("Move public AI services accounts behind a private endpoint, then close public access.",
                      why="Azure AI Services resources should use Azure Private Link",
                      recommendations=("54f53ddf-6ebd-461e-a247-394c542bc5d1",),
                      policies=("d6759c02-b87f-42b7-892e-71b3f471d782",))
    breaks: ClassVar[str] = ("clients not resolving the private zones to the endpoint (the Internet, "
                             "IP rules, service endpoints, VNets without a zone link) lose access")

    # --- plan -------------------------------------------------------------------------------------------

    def plan(self, ctx: PlanContext, params: CreatePrivateEndpointParams) -> list[Change]:
        target, doc = self.document(ctx, ctx.finding.resource_id)
        return self.plan_for(ctx, target, doc, extra=[*params.storage_sub_resources,
                                                      *params.data_factory_sub_resources, *self.assigned_groups(ctx)])

    def assigned_groups(self, ctx: PlanContext) -> list[str]:
        """The sub-resource a DeployIfNotExists endpoint definition's assignment asks for (``ASSIGNED_GROUP``):
        an assignment of the storage definition for ``file`` wants the file endpoint. Read from the finding's
        assignment as the Modify fix reads parameters (an initiative's member entry resolved; the definition's
        default, with a warning, when the assignment is not read)."""
        if ctx.finding.kind != "policy":
            return []
        guid = (ctx.finding.policy_definition_id or ctx.finding.type).rstrip("/").rsplit("/", 1)[-1].lower()
        wanted = ASSIGNED_GROUP.get(guid)
        if wanted is None:
            return []
        from remediator.actions.modify import ApplyModify  # noqa: PLC0415  (a sibling action, registered by now)

        parameter, default = wanted
        modify = REGISTRY[ApplyModify.name]
        if not isinstance(modify, ApplyModify):  # pragma: no cover  (the registry maps each name to its class)
            raise TypeError(f"{ApplyModify.name} is not ApplyModify")
        values = modify.parameters(ctx, {"parameters": {parameter: {"defaultValue": default}}},
                                   f"policy definition {guid}")
        value = values.get(parameter)
        return [value] if isinstance(value, str) and value else []

    def with_connections(self, ctx: PlanContext, target: str, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        """``doc`` as the checks read it: with its private endpoint connections where the type lists them apart
        (``LISTED_CONNECTIONS``); the document itself otherwise (the closing change is built from ``doc``)."""
        listed = LISTED_CONNECTIONS.get(ids.type_key(ids.resource_type(target)))
        if listed is None:
            return doc
        found = ctx.state.get(f"{doc.get('id') or target}/{listed[0]}")
        if found is None:
            ctx.missing(f"{target}/{listed[0]}", "private endpoint connection list",
                        "an existing private endpoint was not seen")
        items = [c for c in (found or {}).get("value") or [] if isinstance(c, Mapping)]
        view = dict(doc)
        view["properties"] = {**_props(doc), "privateEndpointConnections": items}
        return view

    def plan_for(self, ctx: PlanContext, target: str, doc: Mapping[str, Any], *,
                 extra: Sequence[str] = ()) -> list[Change]:
        """The whole path for ``target`` (its document ``doc``): endpoints, zone groups, closing; [] when an
        approved private endpoint exists and public access is off already; endpoints and zone groups alone when
        public access is off but no endpoint exists (nobody reaches the resource). Other actions (the network
        fixes) delegate here when the settings exist."""
        profile = TARGETS.get(ids.type_key(ids.resource_type(target)))
        if profile is None:
            raise ActionError(f"private endpoints are not supported for {ids.resource_type(target)}",
                              action=self.name, resource_id=target)
        view = self.with_connections(ctx, target, doc)
        closed = public_closed(doc)
        if private_endpoints.has_approved_private_endpoint(view):
            if closed:
                return []
            # the private door exists: only the public one closes (today's behaviour), after the DNS zone
            # group of an endpoint this fix made earlier, where that write failed and left it without one
            return [*self.missing_zone_groups(ctx, target, view, extra), self._closing(target, doc, profile)]
        # No approved endpoint. Public access open: build the private path, then close. Public access closed
        # already: nobody reaches the resource, and the "should use private link" findings stay (Azure Policy's
        # own Search/PrivateEndpoints_DINE.json deploys only on services whose publicNetworkAccess is Disabled):
        # build the private path alone.
        self._refuse_unsupported(target, doc)
        settings = ctx.private_link
        where = settings.subnet_for(str(doc.get("location") or "")) if settings is not None else None
        if settings is None or where is None:
            region = str(doc.get("location") or "its region")
            why = "no private endpoint subnet is configured" if settings is None or not settings.configured else \
                f"private_link_subnets has no entry for {region_key(region) or region} and no \"*\""
            state = "public network access is disabled and it has no approved private endpoint: no client reaches " \
                "it" if closed else private_endpoints.cut_off(doc, closing='public').sentence
            raise ActionError(f"refused: {state}; {why}: {SETTINGS_HINT}", action=self.name, resource_id=target)
        key, subnet = where
        location = self._location(ctx, subnet, key, doc)
        changes: list[Change] = []
        kind = str(doc.get("kind") or "")
        zones_used: list[str] = []
        for group in group_ids(doc, extra):
            pe = self._endpoint(ctx, target, group, subnet=subnet, location=location)
            changes.append(pe)
            group_change = self._zone_group(ctx, target, pe.resource_id, group, kind=kind, settings=settings,
                                            used=zones_used)
            if group_change is not None:
                changes.append(group_change)
        dns = (f"the zones ({', '.join(zones_used)}) must be linked to the clients' virtual networks "
               "(virtualNetworkLinks), or their DNS must forward to them") if zones_used else \
            "no private DNS zone is planned: clients resolve the public name until DNS is set up"
        if closed:
            ctx.warn(f"public network access is disabled already: the private endpoint is the only way in; {dns}")
            return changes
        closing = self._closing(target, doc, profile)
        changes.append(Change(action=closing.action, resource_id=closing.resource_id, operation="update",
                              before=closing.before, after=closing.after,
                              note=f"{closing.note}; only after the private endpoint verifies (connection "
                                   f"Approved, provisioning Succeeded); {dns}"))
        return changes

    def missing_zone_groups(self, ctx: PlanContext, target: str, doc: Mapping[str, Any],
                            extra: Sequence[str] = ()) -> list[Change]:
        """The zone groups of the approved endpoints this fix names (``endpoint_name``) that have none (or a
        failed one): an earlier run created the endpoint and stopped at its zone group; closing without it
        would leave the clients resolving the public address of a closed resource."""
        settings = ctx.private_link
        if settings is None:
            return []
        ours = {ids.key(c.private_endpoint_id): c for c in private_endpoints.connections(doc) if c.approved}
        out: list[Change] = []
        for group in group_ids(doc, extra):
            name = endpoint_name(target, group).lower()
            pe_id = next((pid for pid in ours if pid.rsplit("/", 1)[-1] == name), None)
            if pe_id is None:
                continue
            have = ctx.state.get(f"{pe_id}/privateDnsZoneGroups/{ZONE_GROUP}")
            if have is not None and str(_props(have).get("provisioningState") or "Succeeded").lower() == "succeeded":
                continue
            pe_doc = ctx.state.get(pe_id)
            if pe_doc is None:
                continue
            change = self._zone_group(ctx, target, str(pe_doc.get("id") or pe_id), group,
                                      kind=str(doc.get("kind") or ""), settings=settings, used=[])
            if change is not None:
                out.append(replace(change, note=f"{change.note} (the endpoint has none that "
                                                "succeeded: an earlier run stopped there)"))
        return out

    def _refuse_unsupported(self, target: str, doc: Mapping[str, Any]) -> None:
        key = ids.type_key(ids.resource_type(target))
        if key == REGISTRY_TYPE:
            sku = doc.get("sku")
            tier = str((sku.get("name") or sku.get("tier")) if isinstance(sku, Mapping) else "") or "no SKU"
            if tier.lower() != "premium":
                raise ActionError(f"refused: private endpoints need the Premium SKU; this container registry is "
                                  f"{tier} (upgrade it, or leave it to a person)", action=self.name,
                                  resource_id=target)
        if key == WEB_APP_TYPE:
            sku = str(_props(doc).get("sku") or "")
            if sku.lower() in NO_PRIVATE_ENDPOINT_SKUS:
                raise ActionError(f"refused: private endpoints need a Basic or higher App Service plan; this app's "
                                  f"plan is {sku} (scale the plan up, or leave it to a person)", action=self.name,
                                  resource_id=target)
            if _mapping(_props(doc).get("hostingEnvironmentProfile")).get("id"):
                raise ActionError("refused: the app runs in an App Service Environment, whose own network decides "
                                  "how it is reached", action=self.name, resource_id=target)
        if key == ML_WORKSPACE and str(doc.get("kind") or "").lower() == "project":
            hub = str(_props(doc).get("hubResourceId") or "its hub")
            raise ActionError(f"refused: a project is reached through its hub's private endpoint; give the hub "
                              f"{ids.parse(hub).name or hub} one first", action=self.name, resource_id=target)

    def _location(self, ctx: PlanContext, subnet: str, key: str, doc: Mapping[str, Any]) -> str:
        """The endpoint's region: the virtual network's (an endpoint lives in its network's region)."""
        vnet_id = ids.parse(subnet).parent()
        vnet = ctx.state.get(vnet_id.id) if vnet_id is not None else None
        if vnet is not None and vnet.get("location"):
            return str(vnet["location"])
        if vnet_id is not None:
            ctx.missing(vnet_id.id, "virtual network", "the private endpoint's region was taken from the "
                        f"settings key {key!r}" if key != "*" else "the private endpoint's region is assumed "
                        "to be the resource's")
        return key if key != "*" else str(doc.get("location") or "")

    def _endpoint(self, ctx: PlanContext, target: str, group: str, *, subnet: str, location: str) -> Change:
        sub = ids.parse(subnet)
        here = ids.parse(target)
        group_rg = here.resource_group if (here.subscription_id or "").lower() == (sub.subscription_id or "").lower() \
            else sub.resource_group
        name = endpoint_name(target, group)
        pe_id = (f"/subscriptions/{sub.subscription_id}/resourceGroups/{group_rg}/providers/"
                 f"Microsoft.Network/privateEndpoints/{name}")
        after = {"name": name, "type": PRIVATE_ENDPOINT.type, "location": location, "properties": {
            "subnet": {"id": subnet},
            "privateLinkServiceConnections": [{"name": f"{here.name}-{group}", "properties": {
                "privateLinkServiceId": target, "groupIds": [group],
                "requestMessage": "remediator: private endpoint before public network access is disabled"}}]}}
        existing = ctx.state.get(pe_id)
        again = f" (re-creating the endpoint an earlier attempt left, provisioning " \
                f"{_props(existing).get('provisioningState') or 'unknown'})" if existing is not None else ""
        if ctx.state.get(subnet) is None:
            ctx.missing(subnet, "subnet", "its private endpoint network policies and free addresses were not "
                        "checked")
        return Change(action=self.name, resource_id=pe_id, operation="create", before=None, after=after,
                      note=f"private endpoint, group {group}, in subnet {label(subnet)} "
                           f"({location}), connection auto-approved{again}; COSTS MONEY: {COST}")

    def _zone_group(self, ctx: PlanContext, target: str, pe_id: str, group: str, *, kind: str,
                    settings: PrivateLinkSettings, used: list[str]) -> Change | None:
        rtype = ids.resource_type(target)
        names = zone_names(rtype, group, kind=kind, cloud=settings.cloud)
        if not names:
            ctx.warn(f"no private DNS zone is documented for {rtype} group {group} in {settings.cloud}: the endpoint "
                     f"is planned without a zone group; give the clients' DNS an A record for {label(target)}")
            return None
        configs: list[dict[str, Any]] = []
        shown: list[str] = []
        for zone in names:
            zone_id = settings.zone(zone)
            if zone_id is None:
                ctx.warn(f"private DNS zone {zone} is not configured: add it under private_dns_zones in the settings "
                         f"({zone}: /subscriptions/…/providers/Microsoft.Network/privateDnsZones/{zone}); until "
                         f"then clients do not resolve {label(target)}'s name in it to the endpoint")
                continue
            configs.append({"name": _zone_config_name(zone_id), "properties": {"privateDnsZoneId": zone_id}})
            shown.append(ids.parse(zone_id).name)
            if zone not in used:
                used.append(zone)
        if not configs:
            return None
        gid = f"{pe_id}/privateDnsZoneGroups/{ZONE_GROUP}"
        return Change(action=self.name, resource_id=gid, operation="create", before=None,
                      after={"name": ZONE_GROUP, "properties": {"privateDnsZoneConfigs": configs}},
                      note=f"DNS zone group of the endpoint: A records for {label(target)} in {', '.join(shown)}")

    def _closing(self, target: str, doc: Mapping[str, Any], profile: Profile) -> Change:
        value = _closed_value(profile.type)
        before = json_copy(dict(doc))
        after = json_copy(dict(doc))
        after.setdefault("properties", {})
        if not isinstance(after["properties"], dict):
            after["properties"] = {}
        after["properties"][PUBLIC] = value
        old = _props(doc).get(PUBLIC) or "(not set)"
        return Change(action=self.name, resource_id=str(doc.get("id") or target), operation="update", before=before,
                      after=after, note=f"{PUBLIC}: {old} -> {value}; can break: {self.breaks}")

    # --- the kinds of change ------------------------------------------------------------------------------

    @staticmethod
    def kind_of(resource_id: str) -> Literal["endpoint", "zone_group", "target"]:
        key = ids.type_key(ids.resource_type(resource_id))
        if key == ids.type_key(PRIVATE_ENDPOINT.type):
            return "endpoint"
        if key == ids.type_key(PRIVATE_DNS_ZONE_GROUP.type):
            return "zone_group"
        if key in TARGETS:
            return "target"
        raise ActionError(f"not a private endpoint, zone group or {' / '.join(p.noun for p in TARGETS.values())}",
                          action="network.create-private-endpoint", resource_id=resource_id)

    def grants(self, change: Change) -> list[GrantNeed]:
        kind = self.kind_of(change.resource_id)
        doc = change.after if change.after is not None else change.before
        props = _props(doc)
        if kind == "target":
            profile = TARGETS[ids.type_key(ids.resource_type(change.resource_id))]
            return [GrantNeed(change.resource_id, profile.role, f"{profile.type}/write")]
        if kind == "zone_group":
            pe = ids.parse(change.resource_id).parent()
            needs = [GrantNeed(pe.id if pe is not None else change.resource_id, NETWORK_CONTRIBUTOR,
                               "Microsoft.Network/privateEndpoints/privateDnsZoneGroups/"
                               + ("delete" if change.operation == "delete" else "write"))]
            for config in props.get("privateDnsZoneConfigs") or []:
                zone = str(_props(config).get("privateDnsZoneId") or "")
                if zone:
                    needs.append(GrantNeed(zone, PRIVATE_DNS_ZONE_CONTRIBUTOR,
                                           "Microsoft.Network/privateDnsZones/join/action"))
            return needs
        if change.operation == "delete":
            return [GrantNeed(change.resource_id, NETWORK_CONTRIBUTOR, "Microsoft.Network/privateEndpoints/delete")]
        rid = ids.parse(change.resource_id)
        group = f"/subscriptions/{rid.subscription_id}/resourceGroups/{rid.resource_group}"
        needs = [GrantNeed(group, NETWORK_CONTRIBUTOR, "Microsoft.Network/privateEndpoints/write")]
        subnet = str(_mapping(props.get("subnet")).get("id") or "")
        if subnet and not ids.is_under(subnet, group):  # the group's grant covers a subnet inside it
            needs.insert(0, GrantNeed(subnet, NETWORK_CONTRIBUTOR, "Microsoft.Network/virtualNetworks/subnets/"
                                                                   "join/action"))
        for conn in props.get("privateLinkServiceConnections") or []:
            target = str(_props(conn).get("privateLinkServiceId") or "")
            owner = TARGETS.get(ids.type_key(ids.resource_type(target)))
            if owner is not None:
                needs.append(GrantNeed(target, owner.role, f"{owner.type}/privateEndpointConnectionsApproval/action"))
        return needs

    # --- apply / verify / undo ------------------------------------------------------------------------------

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415  (lazy SDK import)

        from remediator.azure.reader import http_error_line  # noqa: PLC0415

        kind = self.kind_of(change.resource_id)
        rid = ids.parse(change.resource_id)
        noun = {"endpoint": "private endpoint", "zone_group": "private DNS zone group"}.get(kind, "")
        what = f"{noun or TARGETS[ids.type_key(rid.type)].noun} {label(change.resource_id)}"
        verb = {"create": "create", "delete": "delete"}.get(change.operation, "write")
        try:
            if kind == "target":
                return self._apply_target(clients, change, what)
            network = clients.network(rid.subscription_id or "")
            if kind == "endpoint":
                ops = network.private_endpoints
                args: tuple[str, ...] = (rid.resource_group or "", rid.names[0])
            else:
                ops = network.private_dns_zone_groups
                args = (rid.resource_group or "", rid.names[0], rid.names[1])
            if change.operation == "delete":
                ops.begin_delete(*args).result()
            elif change.after is not None:
                ops.begin_create_or_update(*args, self._body(kind, change.after)).result()
            else:
                raise ActionError(f"cannot apply a {change.operation!r} change without a document", action=self.name,
                                  resource_id=change.resource_id)
        except HttpResponseError as e:
            raise ActionError(f"{verb} of {what} failed: {http_error_line(e)}", action=self.name,
                              resource_id=change.resource_id) from None
        done = {"create": "created", "delete": "deleted"}.get(change.operation, "wrote")
        log.info("%s %s", done, change.resource_id)
        return ApplyResult(change=change, detail=f"{done} {what}")

    @staticmethod
    def _body(kind: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        props = _props(doc)
        if kind == "endpoint":
            keep = ("subnet", "privateLinkServiceConnections")
            return {"location": doc.get("location"), "properties": {k: json_copy(props[k]) for k in keep if k in props}}
        return {"properties": {"privateDnsZoneConfigs": json_copy(props.get("privateDnsZoneConfigs") or [])}}

    def _apply_target(self, clients: ArmClients, change: Change, what: str) -> ApplyResult:
        profile = TARGETS[ids.type_key(ids.resource_type(change.resource_id))]
        value = _props(change.after).get(PUBLIC)
        if value is None:
            raise ActionError("the change does not set publicNetworkAccess", action=self.name,
                              resource_id=change.resource_id)
        # no If-Match: the endpoint this plan created changed the document's ETag (see the module docstring)
        write(clients, "PATCH", change.resource_id, profile.api_version, body={"properties": {PUBLIC: value}})
        return ApplyResult(change=change, detail=f"{what}: {PUBLIC} {value}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        kind = self.kind_of(change.resource_id)
        current = state.get(change.resource_id)
        name = ids.parse(change.resource_id).name
        if change.operation == "delete":
            return None if current is None else f"{name} still exists"
        if current is None:
            return f"{name} does not exist"
        props = _props(current)
        if kind == "target":
            want = str(_props(change.after).get(PUBLIC) or "")
            have = str(props.get(PUBLIC) or "Enabled")
            return None if have.lower() == want.lower() else f"{PUBLIC} is {have}, expected {want}"
        state_ = str(props.get("provisioningState") or "")
        if state_ and state_.lower() != "succeeded":
            return f"{name} provisioning is {state_}, not Succeeded: public access was not closed"
        if kind == "endpoint":
            return self._connection_problem(state, change, current)
        want_zones = {str(_props(c).get("privateDnsZoneId") or "").lower()
                      for c in _props(change.after).get("privateDnsZoneConfigs") or []}
        have_zones = {str(_props(c).get("privateDnsZoneId") or "").lower()
                      for c in props.get("privateDnsZoneConfigs") or []}
        missing = sorted(want_zones - have_zones)
        return f"zone group {name} lacks {', '.join(ids.parse(z).name for z in missing)}" if missing else None

    @staticmethod
    def _connection_problem(state: StateReader, change: Change, current: Mapping[str, Any]) -> str | None:
        """Why the endpoint's connection does not carry traffic yet (None: Approved)."""
        name = ids.parse(change.resource_id).name
        conns = [c for c in _props(current).get("privateLinkServiceConnections") or [] if isinstance(c, Mapping)]
        manual = [c for c in _props(current).get("manualPrivateLinkServiceConnections") or [] if isinstance(c, Mapping)]
        status = ""
        for conn in (*conns, *manual):
            status = str(_mapping(_props(conn).get("privateLinkServiceConnectionState")).get("status") or "")
            if status.lower() == "approved":
                return None
        if not status:  # the endpoint's document says nothing: ask the target
            for conn in (*conns, *manual):
                target = state.get(str(_props(conn).get("privateLinkServiceId") or ""))
                for c in private_endpoints.connections(target):
                    if ids.same(c.private_endpoint_id, change.resource_id):
                        if c.approved:
                            return None
                        status = c.status
        return (f"{name}'s connection is {status or 'without a status'}, not Approved (it carries no traffic): "
                "public access was not closed")

    def weighs(self, change: Change) -> str:
        """A private endpoint the change creates costs money; its zone group and closing public access do not."""
        created = change.operation == "create" and ids.type_key(ids.resource_type(change.resource_id)) == \
            ids.type_key(PRIVATE_ENDPOINT.type)
        return f"costs money: {COST}" if created else ""

    def undo(self, change: Change) -> Change:
        what = ids.parse(change.resource_id).name
        if change.operation == "create" and change.after is not None:
            return Change(action=self.name, resource_id=change.resource_id, operation="delete",
                          before=without_etag(change.after), after=None, note=f"undo: delete {what}")
        if change.operation == "update" and change.before is not None and change.after is not None:
            old = _props(change.before).get(PUBLIC)
            restored = json_copy(dict(change.after))
            restored["properties"] = dict(_props(restored))
            restored["properties"][PUBLIC] = old if old is not None else \
                ("enabled" if ids.type_key(ids.resource_type(change.resource_id)) == SEARCH else "Enabled")
            return Change(action=self.name, resource_id=change.resource_id, operation="update",
                          before=without_etag(change.after), after=without_etag(restored),
                          note=f"undo: {PUBLIC} back to {restored['properties'][PUBLIC]} on {what}")
        raise ActionError("this change cannot be undone", action=self.name, resource_id=change.resource_id)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


COST = "billed per hour and per GB processed while it exists (https://azure.microsoft.com/pricing/details/private-link/)"

ACTION: CreatePrivateEndpoint = REGISTRY[CreatePrivateEndpoint.name]  # type: ignore[assignment]


# --- the DNS zone group of an existing private endpoint ------------------------------------------------------


class CreatePrivateDnsZoneGroupParams(Params):
    """No parameters: the zones come from the settings (``private_dns_zones``), by the endpoint's group id."""


@register
class CreatePrivateDnsZoneGroup(Action[CreatePrivateDnsZoneGroupParams]):
    """Give a private endpoint that has no DNS zone group one, with the configured central zones.

    The findings are on the **private endpoint**, not on the resource it connects to: Azure Policy's
    DeployIfNotExists "Configure … to use private DNS zones" definitions match ``Microsoft.Network/
    privateEndpoints`` whose ``privateLinkServiceConnections`` reach a type and group id, and deploy a
    ``privateDnsZoneGroups`` child when the endpoint has none (e.g. Cognitive Services/
    PrivateDnsZones_DINE.json: no existenceCondition, so any zone group satisfies it; the policy names its
    ``deployedByPolicy``). Every type of ``remediator.actions.private_link_table.ZONE_TYPES`` is served, those
    whose endpoints remediator does not create included (Databricks, Synapse, disk accesses, File Sync, Azure
    Monitor private link scopes): a zone group needs no right on the target. Planned here with one approval
    instead: the endpoint's (first supported)
    connection names the target and group id, ``remediator.actions.private_link_table.zone_names`` the zones
    (by the target's kind and the cloud: an OpenAI account gets ``privatelink.openai.azure.com``, the zone the
    Cognitive Services policy leaves out), the settings their ids. An endpoint with a zone group that
    succeeded (named ``default``, as the portal, the CLI and the private-link fix name it, or
    ``deployedByPolicy``) needs nothing; without ``private_dns_zones`` the plan refuses, naming the setting.
    Writing, grants (Network Contributor on the endpoint, Private DNS Zone Contributor on each zone),
    verification and undo are those of ``network.create-private-endpoint``'s zone group step."""

    name = "network.create-private-dns-zone-group"
    summary = "Create the DNS zone group of a private endpoint that has none, in the configured private DNS zones"
    resource_types = (PRIVATE_ENDPOINT.type,)
    role = NETWORK_CONTRIBUTOR
    extra_roles = (PRIVATE_DNS_ZONE_CONTRIBUTOR,)
    permissions = PRIVATE_DNS_ZONE_GROUP.permissions
    api_version = PRIVATE_DNS_ZONE_GROUP.api_version
    reversible = True
    example = Example("Give private endpoints to AI services accounts their DNS zone group.",
                      why="Configure Cognitive Services accounts to use private DNS zones",
                      policies=("c4bc6f10-cb41-49eb-b000-d5ab82e2a091",))
    KNOWN_NAMES: ClassVar[tuple[str, ...]] = (ZONE_GROUP, "deployedByPolicy")

    def plan(self, ctx: PlanContext, params: CreatePrivateDnsZoneGroupParams) -> list[Change]:
        pe_id, pe = self.document(ctx, ctx.finding.resource_id)
        for name in self.KNOWN_NAMES:
            have = ctx.state.get(f"{pe_id}/privateDnsZoneGroups/{name}")
            if have is not None and str(_props(have).get("provisioningState") or "Succeeded").lower() == "succeeded":
                return []
        target, group = self._connection(pe_id, pe)
        settings = ctx.private_link
        rtype = ids.resource_type(target)
        kind = ""
        if ids.type_key(rtype) == COGNITIVE:  # the only type whose zones depend on the document (its kind)
            target_doc = ctx.state.get(target)
            if target_doc is None:
                ctx.missing(target, ZONE_TYPES[COGNITIVE][1], "its kind (which zones it answers in) was not read")
            kind = str((target_doc or {}).get("kind") or "")
        if settings is None or not settings.zones:
            wanted = zone_names(rtype, group, kind=kind, cloud=settings.cloud if settings is not None else "AzureCloud")
            raise ActionError(f"refused: no private DNS zone is configured: set private_dns_zones in the settings "
                              f"({', '.join(wanted) or 'the zones'} for group {group})", action=self.name,
                              resource_id=pe_id)
        change = ACTION._zone_group(ctx, target, str(pe.get("id") or pe_id), group, kind=kind, settings=settings,
                                    used=[])
        if change is None:
            raise ActionError(f"refused: none of the private DNS zones for {rtype} group {group} is configured "
                              "(see the plan's warnings)", action=self.name, resource_id=pe_id)
        return [replace(change, action=self.name,
                        note=f"{change.note}; can break: clients in networks linked to the zones resolve "
                             f"{label(target)} to the endpoint's private address from then on")]

    def _connection(self, pe_id: str, pe: Mapping[str, Any]) -> tuple[str, str]:
        """The target and group id of the endpoint's first connection to a supported type."""
        props = _props(pe)
        for conn in (*(props.get("privateLinkServiceConnections") or []),
                     *(props.get("manualPrivateLinkServiceConnections") or [])):
            cp = _props(conn)
            target = str(cp.get("privateLinkServiceId") or "")
            groups = [str(g) for g in cp.get("groupIds") or []]
            if target and groups and ids.type_key(ids.resource_type(target)) in ZONE_TYPES:
                status = str(_mapping(cp.get("privateLinkServiceConnectionState")).get("status") or "")
                if status.lower() != "approved":
                    # the zone group would send the linked networks' clients to an endpoint that carries no traffic
                    raise ActionError(f"refused: the endpoint's connection to {label(target)} is "
                                      f"{status or 'without a status'}, not Approved: a DNS zone group now would "
                                      "resolve its name to an address that carries no traffic; approve the connection "
                                      "first",
                                      action=self.name, resource_id=pe_id)
                return target, groups[0]
        supported = ", ".join(noun for _type, noun in ZONE_TYPES.values())
        raise ActionError(f"the private endpoint connects to no supported resource ({supported})", action=self.name,
                          resource_id=pe_id)

    def grants(self, change: Change) -> list[GrantNeed]:
        return ACTION.grants(change)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        return ACTION.apply(clients, change)

    def verify(self, state: StateReader, change: Change) -> str | None:
        return ACTION.verify(state, change)

    def undo(self, change: Change) -> Change:
        return replace(ACTION.undo(change), action=self.name)
