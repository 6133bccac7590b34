"""Storage actions: anonymous blob access and the storage firewall.

``storage.disable-public-blob-access``
    Sets ``allowBlobPublicAccess: false`` on the account (which turns anonymous access off for
    every container at once) and, for the containers the finding names (a Defender alert such as
    ``Storage.Blob_OpenACL`` names the container it saw opened), also sets the container's own
    ``publicAccess`` to ``None``, so re-enabling the account setting later does not silently
    re-open them. A finding on a container resource id works too: it acts on its account.
``storage.restrict-network-access``
    Sets the storage firewall's ``networkAcls.defaultAction`` to ``Deny``. Existing IP rules,
    virtual network rules and resource access rules stay; the playbook may add allowed public
    IPv4 ranges and subnets, and choose the trusted-service ``bypass`` (default: keep the current
    one, ``AzureServices`` when none is set, which is ARM's default).

``storage.disable-public-network-access``
    Sets ``publicNetworkAccess: Disabled`` (private endpoints only); the plan says who is cut off.
``storage.disable-shared-key-access``
    Sets ``allowSharedKeyAccess: false`` (Entra ID only); the plan says key and SAS clients stop.

All write with one PATCH carrying only the changed property (ARM merges it); the plan's
``before``/``after`` are the full documents. All are reversible: ``undo`` puts the previous
values back. The last two are declarations (``remediator.actions.properties``).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Action, ApplyResult, BuiltinRole, Params, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.private_endpoints import cut_off
from remediator.actions.properties import NoParams, PropertyAction, Setting
from remediator.azure.state import StateReader
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

log = logging.getLogger(__name__)

# Storage Account Contributor, 17d1049b-9a84-46fb-8f53-869881c3d3ab: MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles.md and built-in-roles/storage.md ("Permits
# management of storage accounts"; actions include Microsoft.Storage/storageAccounts/*, which covers
# storageAccounts/write and storageAccounts/blobServices/containers/write). The narrower storage roles
# are data-plane (Storage Blob Data *) or key-only (Storage Account Key Operator Service Role).
STORAGE_ACCOUNT_CONTRIBUTOR = BuiltinRole("Storage Account Contributor",
                                          "17d1049b-9a84-46fb-8f53-869881c3d3ab")

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
CONTAINER_TYPE = "Microsoft.Storage/storageAccounts/blobServices/containers"
SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
# container names: 3-63 lower-case letters, digits and single hyphens; plus the system containers
_CONTAINER_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}|\$root|\$web|\$logs)$")
_BYPASS_VALUES = ("AzureServices", "Logging", "Metrics")
# Storage IP rules refuse private (RFC 1918) ranges; loopback, link-local, multicast and reserved
# ranges can never be a client's public address either.
_NOT_ALLOWED_RANGES = tuple(ipaddress.IPv4Network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/8",
    "224.0.0.0/4", "240.0.0.0/4"))


def _props(doc: Mapping[str, Any] | None) -> Mapping[str, Any]:
    value = (doc or {}).get("properties")
    return value if isinstance(value, Mapping) else {}


def _account_id(resource_id: str) -> str:
    """The storage account id of an account or of anything under it (original casing kept)."""
    parts = resource_id.strip().rstrip("/").split("/")
    for i, part in enumerate(parts):
        if part.lower() == "storageaccounts" and i + 1 < len(parts) and i > 0 and \
                parts[i - 1].lower() == "microsoft.storage":
            return "/".join(parts[: i + 2])
    raise ActionError(f"{resource_id}: not a storage account or a resource under one")


def _account_doc(ctx: PlanContext, action: str) -> tuple[str, dict[str, Any]]:
    account_id = _account_id(ctx.finding.resource_id)
    doc = ctx.state.get(account_id)
    if doc is None:
        raise ActionError("storage account not found", action=action, resource_id=account_id)
    return str(doc.get("id") or account_id), doc


def _with_property(doc: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = json_copy(dict(doc))
    props = out.get("properties")
    if not isinstance(props, dict):
        props = out["properties"] = {}
    props[key] = value
    return out


def _arm_error(action: str, what: str, resource_id: str, exc: BaseException) -> ActionError:
    from remediator.azure.reader import http_error_line  # noqa: PLC0415

    return ActionError(f"{what} failed: {http_error_line(exc)}", action=action, resource_id=resource_id)


def _parts(resource_id: str, n: int) -> tuple[str, str, tuple[str, ...]]:
    rid = ids.parse(resource_id)
    if not rid.subscription_id or not rid.resource_group or len(rid.names) != n:
        raise ActionError(f"{resource_id}: not a resource id with {n} name(s)")
    return rid.subscription_id, rid.resource_group, rid.names


# --- storage.disable-public-blob-access --------------------------------------------------------------


class DisablePublicBlobAccessParams(Params):
    named_containers: bool = Field(
        default=True,
        description="Also set publicAccess to None on the blob containers the finding names (an alert's "
                    "container, or a finding on a container). The account setting alone already blocks "
                    "anonymous access; this keeps the containers private if it is ever turned back on.")


@register
class DisablePublicBlobAccess(Action[DisablePublicBlobAccessParams]):
    """Disallow anonymous (public) blob access on a storage account and its named containers.

    ```yaml
    name: storage-disable-public-blob-access
    description: Turn off anonymous blob access on storage accounts that Defender flags.
    match:
      # "Storage account public access should be disallowed"
      recommendations: [51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6]
      alerts: [Storage.Blob_OpenACL, Storage.Blob_AnonymousAccessAnomaly]
      resource_types: [Microsoft.Storage/storageAccounts]
    risk: low
    approval: auto
    steps:
      - action: storage.disable-public-blob-access
        params: {named_containers: true}
    ```
    """

    name = "storage.disable-public-blob-access"
    summary = "Set allowBlobPublicAccess to false on the account (and publicAccess None on named containers)"
    Params = DisablePublicBlobAccessParams
    resource_types = (ACCOUNT_TYPE, CONTAINER_TYPE)
    permissions = (
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Storage/storageAccounts/write",
        "Microsoft.Storage/storageAccounts/blobServices/containers/read",
        "Microsoft.Storage/storageAccounts/blobServices/containers/write",
    )
    role = STORAGE_ACCOUNT_CONTRIBUTOR
    reversible = True

    def plan(self, ctx: PlanContext, params: DisablePublicBlobAccessParams) -> list[Change]:
        account_id, account = _account_doc(ctx, self.name)
        changes: list[Change] = []
        if _props(account).get("allowBlobPublicAccess") is not False:
            changes.append(Change(
                action=self.name, resource_id=account_id, operation="update", before=account,
                after=_with_property(account, "allowBlobPublicAccess", False),
                note="allowBlobPublicAccess: false (no anonymous access to any container)"))
        if params.named_containers:
            for name in self._container_names(ctx):
                cid = f"{account_id}/blobServices/default/containers/{name}"
                doc = ctx.state.get(cid)
                if doc is None:  # deleted since, or not saved: the account setting still covers it
                    ctx.missing(cid, "blob container", "its own publicAccess was not checked (the account's "
                                "allowBlobPublicAccess still blocks anonymous access to it)")
                    continue
                if _props(doc).get("publicAccess", "None") == "None":
                    continue  # already private
                changes.append(Change(
                    action=self.name, resource_id=str(doc.get("id") or cid), operation="update", before=doc,
                    after=_with_property(doc, "publicAccess", "None"),
                    note=f"container {name}: publicAccess {_props(doc).get('publicAccess')} -> None"))
        return changes

    @staticmethod
    def _container_names(ctx: PlanContext) -> list[str]:
        from remediator.findings.parse import blob_containers  # noqa: PLC0415

        names: list[str] = []
        rid = ids.parse(ctx.finding.resource_id)
        if ids.type_key(rid.type) == ids.type_key(CONTAINER_TYPE) and len(rid.names) == 3:
            names.append(rid.names[2])
        names.extend(blob_containers(ctx.finding))
        out: list[str] = []
        for name in names:
            # a name that is not a valid container name cannot be a container (and must never be
            # spliced into a resource path): skip it
            if _CONTAINER_NAME.match(name) and name not in out:
                out.append(name)
        return out

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415

        if ids.type_key(ids.resource_type(change.resource_id)) == ids.type_key(CONTAINER_TYPE):
            from azure.mgmt.storage.models import BlobContainer, ContainerProperties  # noqa: PLC0415

            sub, rg, (account, _, container) = _parts(change.resource_id, 3)
            value = _props(change.after).get("publicAccess", "None")
            try:
                body = BlobContainer(container_properties=ContainerProperties(public_access=value))
                out = clients.storage(sub).blob_containers.update(rg, account, container, body)
            except HttpResponseError as e:
                raise _arm_error(self.name, f"PATCH of container {account}/{container}", change.resource_id,
                                 e) from None
            log.info("set publicAccess=%s on container %s/%s", value, account, container)
            return ApplyResult(change=change, response=out.as_dict(),
                               detail=f"container {account}/{container}: publicAccess {value}")
        from azure.mgmt.storage.models import (  # noqa: PLC0415
            StorageAccountPropertiesUpdateParameters,
            StorageAccountUpdateParameters,
        )

        sub, rg, (account,) = _parts(change.resource_id, 1)
        allow = _props(change.after).get("allowBlobPublicAccess")
        if not isinstance(allow, bool):
            raise ActionError("the change has no boolean allowBlobPublicAccess to write", action=self.name,
                              resource_id=change.resource_id)
        try:
            props = StorageAccountPropertiesUpdateParameters(allow_blob_public_access=allow)
            out = clients.storage(sub).storage_accounts.update(
                rg, account, StorageAccountUpdateParameters(properties=props))
        except HttpResponseError as e:
            raise _arm_error(self.name, f"PATCH of storage account {account}", change.resource_id,
                             e) from None
        log.info("set allowBlobPublicAccess=%s on storage account %s", allow, account)
        return ApplyResult(change=change, response=out.as_dict(),
                           detail=f"storage account {account}: allowBlobPublicAccess {str(allow).lower()}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        if current is None:
            return f"{ids.parse(change.resource_id).name} no longer exists"
        key, default = self._field(change.resource_id)
        want = _props(change.after).get(key, default)
        have = _props(current).get(key, default)
        return None if have == want else f"{key} is {have!r}, expected {want!r}"

    @staticmethod
    def _field(resource_id: str) -> tuple[str, Any]:
        if ids.type_key(ids.resource_type(resource_id)) == ids.type_key(CONTAINER_TYPE):
            return "publicAccess", "None"
        return "allowBlobPublicAccess", None

    def undo(self, change: Change) -> Change:
        if change.before is None or change.after is None:
            raise ActionError("this change has no before/after documents to undo", action=self.name,
                              resource_id=change.resource_id)
        key, default = self._field(change.resource_id)
        previous = _props(change.before).get(key, default)
        if previous is None:
            # the account never set it: ARM treats that as allowed (accounts from before the setting)
            previous = True
        return Change(action=self.name, resource_id=change.resource_id, operation="update",
                      before=change.after, after=_with_property(change.after, key, previous),
                      note=f"undo: {key} back to {previous!r}")


# --- storage.restrict-network-access -----------------------------------------------------------------


class RestrictNetworkAccessParams(Params):
    allowed_ip_ranges: list[str] = Field(
        default_factory=list,
        description="Public IPv4 addresses or CIDR ranges to allow through the firewall, e.g. "
                    "['203.0.113.0/24', '198.51.100.7']. Storage refuses private ranges and /31, /32 "
                    "prefixes (give a single address instead).")
    allowed_subnet_ids: list[str] = Field(
        default_factory=list,
        description="ARM ids of subnets to allow (/subscriptions/…/virtualNetworks/<vnet>/subnets/<subnet>); "
                    "each subnet needs the Microsoft.Storage service endpoint.")
    bypass: list[Literal["AzureServices", "Logging", "Metrics"]] | None = Field(
        default=None,
        description="Traffic allowed past the firewall regardless of rules. Default: keep the account's "
                    "current bypass (AzureServices when none is set). [] means none.")

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _valid_ranges(cls, value: list[str]) -> list[str]:
        return valid_ip_ranges(value, "storage")

    @field_validator("allowed_subnet_ids")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        return valid_subnet_ids(value)


def valid_ip_ranges(value: list[str], service: str) -> list[str]:
    """Public IPv4 addresses and CIDR ranges for a firewall's IP rules, normalised (a /32 becomes the
    address); a ``ValueError`` of one line naming the bad item otherwise. Storage and Cognitive
    Services share these rules: public IPv4 only, no /31 or /32 prefixes."""
    out: list[str] = []
    for item in value:
        text = item.strip()
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            raise ValueError(f"{item!r} is not an IPv4 address or CIDR range ({e})") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"{item!r}: {service} IP rules take IPv4 addresses and ranges only")
        if net.prefixlen == 0:
            raise ValueError(f"{item!r} is the whole Internet")
        if net.prefixlen in (31,) or (net.prefixlen == 32 and "/" in text):
            raise ValueError(f"{item!r}: {service} does not accept /31 or /32 ranges; give the address "
                             f"{net.network_address} itself")
        if any(net.overlaps(private) for private in _NOT_ALLOWED_RANGES):
            raise ValueError(f"{item!r} is not a public range; {service} IP rules take public addresses "
                             "only (use allowed_subnet_ids for virtual network traffic)")
        out.append(str(net.network_address) if net.prefixlen == 32 else str(net))
    return out


def valid_subnet_ids(value: list[str]) -> list[str]:
    """Subnet ARM ids, stripped; a ``ValueError`` of one line naming the bad item otherwise."""
    for item in value:
        rid = ids.parse(item)
        if ids.type_key(rid.type) != SUBNET_TYPE or not rid.subscription_id or not rid.resource_group \
                or len(rid.names) != 2 or not item.strip().startswith("/"):
            raise ValueError(f"{item!r} is not a subnet id; expected /subscriptions/<id>/resourceGroups/"
                             "<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
    return [v.strip() for v in value]


def _bypass_set(value: object) -> frozenset[str]:
    if not isinstance(value, str):
        return frozenset()
    return frozenset(p.strip().lower() for p in value.split(",") if p.strip() and p.strip().lower() != "none")


def _acl_summary(acls: Mapping[str, Any]) -> tuple[str, frozenset[str], frozenset[str], frozenset[str]]:
    """What the action manages, normalised for comparison: default action, bypass, IPs, subnets."""
    ips = frozenset(str(r.get("value", "")).lower() for r in acls.get("ipRules") or []
                    if isinstance(r, Mapping))
    nets = frozenset(str(r.get("id", "")).lower() for r in acls.get("virtualNetworkRules") or []
                     if isinstance(r, Mapping))
    bypass = _bypass_set(acls.get("bypass", "AzureServices"))
    return str(acls.get("defaultAction", "Allow")), bypass, ips, nets


# What ARM reports for an account that never configured its firewall.
DEFAULT_ACLS: Mapping[str, Any] = {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [],
                                   "defaultAction": "Allow"}


@register
class RestrictNetworkAccess(Action[RestrictNetworkAccessParams]):
    """Deny storage access by default; keep existing firewall rules, add the allowed ranges and subnets.

    ```yaml
    name: storage-restrict-network-access
    description: Close the storage firewall to everything but the listed networks.
    match:
      recommendations: [45d313c3-3fca-5040-035f-d61928366d31]   # restrict firewall and virtual network access
      resource_types: [Microsoft.Storage/storageAccounts]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 4h}
    steps:
      - action: storage.restrict-network-access
        params:
          allowed_ip_ranges: [203.0.113.0/24]
          allowed_subnet_ids:
            -
              /subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/hub/subnets/apps
          bypass: [AzureServices]
    ```
    """

    name = "storage.restrict-network-access"
    summary = "Set the storage firewall's default action to Deny, keeping and adding allowed networks"
    Params = RestrictNetworkAccessParams
    resource_types = (ACCOUNT_TYPE,)
    permissions = (
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Storage/storageAccounts/write",
        # adding a virtual network rule joins the subnet through its service endpoint
        "Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",
    )
    role = STORAGE_ACCOUNT_CONTRIBUTOR
    reversible = True

    def plan(self, ctx: PlanContext, params: RestrictNetworkAccessParams) -> list[Change]:
        account_id, account = _account_doc(ctx, self.name)
        current = _props(account).get("networkAcls")
        acls: dict[str, Any] = json_copy(dict(current)) if isinstance(current, Mapping) else \
            json_copy(dict(DEFAULT_ACLS))
        acls["defaultAction"] = "Deny"
        if params.bypass is not None:
            acls["bypass"] = ", ".join(v for v in _BYPASS_VALUES if v in params.bypass) or "None"
        elif not acls.get("bypass"):
            acls["bypass"] = "AzureServices"
        ip_rules = list(acls.get("ipRules") or [])
        have_ips = {str(r.get("value", "")).lower() for r in ip_rules if isinstance(r, Mapping)}
        for value in params.allowed_ip_ranges:
            if value.lower() not in have_ips:
                ip_rules.append({"value": value, "action": "Allow"})
                have_ips.add(value.lower())
        acls["ipRules"] = ip_rules
        vnet_rules = list(acls.get("virtualNetworkRules") or [])
        have_nets = {str(r.get("id", "")).lower() for r in vnet_rules if isinstance(r, Mapping)}
        for sid in params.allowed_subnet_ids:
            if sid.lower() not in have_nets:
                vnet_rules.append({"id": sid, "action": "Allow"})
                have_nets.add(sid.lower())
        acls["virtualNetworkRules"] = vnet_rules
        before = current if isinstance(current, Mapping) else DEFAULT_ACLS
        if _acl_summary(acls) == _acl_summary(before):
            return []
        note = (f"networkAcls: defaultAction Deny, bypass {acls['bypass']}, {len(ip_rules)} IP rule(s), "
                f"{len(vnet_rules)} virtual network rule(s)")
        return [Change(action=self.name, resource_id=account_id, operation="update", before=account,
                       after=_with_property(account, "networkAcls", acls), note=note)]

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        from azure.core.exceptions import HttpResponseError  # noqa: PLC0415
        from azure.mgmt.storage.models import (  # noqa: PLC0415
            NetworkRuleSet,
            StorageAccountPropertiesUpdateParameters,
            StorageAccountUpdateParameters,
        )

        sub, rg, (account,) = _parts(change.resource_id, 1)
        acls = _props(change.after).get("networkAcls")
        if not isinstance(acls, Mapping):
            raise ActionError("the change has no networkAcls to write", action=self.name,
                              resource_id=change.resource_id)
        body = _writable_acls(acls)
        try:
            props = StorageAccountPropertiesUpdateParameters(network_rule_set=NetworkRuleSet(body))
            out = clients.storage(sub).storage_accounts.update(
                rg, account, StorageAccountUpdateParameters(properties=props))
        except HttpResponseError as e:
            raise _arm_error(self.name, f"PATCH of storage account {account}", change.resource_id,
                             e) from None
        log.info("set networkAcls.defaultAction=%s on storage account %s", body.get("defaultAction"), account)
        return ApplyResult(change=change, response=out.as_dict(),
                           detail=f"storage account {account}: networkAcls defaultAction "
                                  f"{body.get('defaultAction')}")

    def verify(self, state: StateReader, change: Change) -> str | None:
        current = state.get(change.resource_id)
        if current is None:
            return f"{ids.parse(change.resource_id).name} no longer exists"
        want_acls = _props(change.after).get("networkAcls")
        have_acls = _props(current).get("networkAcls")
        want = _acl_summary(want_acls if isinstance(want_acls, Mapping) else DEFAULT_ACLS)
        have = _acl_summary(have_acls if isinstance(have_acls, Mapping) else DEFAULT_ACLS)
        if have == want:
            return None
        labels = ("defaultAction", "bypass", "ipRules", "virtualNetworkRules")
        diffs = [label for label, a, b in zip(labels, want, have, strict=True) if a != b]
        return f"networkAcls differ from the plan in {', '.join(diffs)}"

    def undo(self, change: Change) -> Change:
        if change.before is None or change.after is None:
            raise ActionError("this change has no before/after documents to undo", action=self.name,
                              resource_id=change.resource_id)
        previous = _props(change.before).get("networkAcls")
        acls = json_copy(dict(previous if isinstance(previous, Mapping) else DEFAULT_ACLS))
        return Change(action=self.name, resource_id=change.resource_id, operation="update",
                      before=change.after, after=_with_property(change.after, "networkAcls", acls),
                      note=f"undo: networkAcls back to defaultAction {acls.get('defaultAction', 'Allow')}")


def _writable_acls(acls: Mapping[str, Any]) -> dict[str, Any]:
    """The networkAcls to PATCH: the whole rule set (ARM replaces it), minus read-only rule ``state``."""
    body = json_copy(dict(acls))
    rules = body.get("virtualNetworkRules")
    if isinstance(rules, list):
        body["virtualNetworkRules"] = [
            {k: v for k, v in r.items() if k != "state"} if isinstance(r, dict) else r for r in rules
        ]
    return body


# --- storage.disable-public-network-access / storage.disable-shared-key-access (declarative) ---------

# Azure/azure-rest-api-specs specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/
# storage.json: StorageAccounts_Update is a PATCH of StorageAccountUpdateParameters (publicNetworkAccess
# Enabled|Disabled|SecuredByPerimeter, allowSharedKeyAccess boolean), answered 200 (not a long-running
# operation); examples/StorageAccountUpdateDisablePublicNetworkAccess.json.
STORAGE_API_VERSION = "2023-05-01"


class DisablePublicNetworkAccessParams(Params):
    refuse_if_everyone_cut_off: bool = Field(
        default=False,
        description="Refuse the change (write nothing) when the account has no approved private endpoint "
                    "connection, i.e. when disabling public network access would cut off every client.")


@register
class DisablePublicNetworkAccess(PropertyAction[DisablePublicNetworkAccessParams]):
    """Disable public network access on a storage account: only approved private endpoints still reach it.

    Stronger than ``storage.restrict-network-access`` (firewall default Deny): with
    ``publicNetworkAccess: Disabled`` the firewall's IP and virtual network rules no longer admit
    anything; the plan says who is cut off.

    ```yaml
    name: storage-disable-public-network-access
    description: Close storage accounts to the public network; private endpoints only.
    match:
      policies: [b2982f36-99f2-4db5-8eff-283140c09693]   # Storage accounts should disable public network access
      resource_types: [Microsoft.Storage/storageAccounts]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: storage.disable-public-network-access
        params: {refuse_if_everyone_cut_off: true}
    ```
    """

    name = "storage.disable-public-network-access"
    summary = "Set publicNetworkAccess to Disabled on the storage account (private endpoints only)"
    Params = DisablePublicNetworkAccessParams
    resource_types = (ACCOUNT_TYPE,)
    permissions = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write")
    role = STORAGE_ACCOUNT_CONTRIBUTOR
    api_version = STORAGE_API_VERSION
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),)
    breaks = ("every client outside the account's approved private endpoints (Internet, IP rules, "
              "virtual network service endpoints) loses access to blobs, files, queues and tables")

    def target_id(self, ctx: PlanContext) -> str:
        return _account_id(ctx.finding.resource_id)

    def refusal(self, ctx: PlanContext, params: DisablePublicNetworkAccessParams,
                doc: Mapping[str, Any]) -> str | None:
        return cut_off(doc, closing="public").refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: DisablePublicNetworkAccessParams,
              doc: Mapping[str, Any]) -> list[str]:
        return [cut_off(doc, closing="public").sentence]


@register
class DisableSharedKeyAccess(PropertyAction[NoParams]):
    """Disallow shared key authorization on a storage account: Microsoft Entra ID only.

    ```yaml
    name: storage-disable-shared-key-access
    description: Stop shared key (account key and key-signed SAS) access to storage accounts.
    match:
      recommendations: [3b363842-30f5-4056-980d-3a40fa5de8b3]   # Storage accounts should prevent shared key access
      policies: [8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54]
      resource_types: [Microsoft.Storage/storageAccounts]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: storage.disable-shared-key-access
    ```
    """

    name = "storage.disable-shared-key-access"
    summary = "Set allowSharedKeyAccess to false on the storage account (Entra ID authorization only)"
    Params = NoParams
    resource_types = (ACCOUNT_TYPE,)
    permissions = ("Microsoft.Storage/storageAccounts/read", "Microsoft.Storage/storageAccounts/write")
    role = STORAGE_ACCOUNT_CONTRIBUTOR
    api_version = STORAGE_API_VERSION
    # ARM treats an absent allowSharedKeyAccess as true (storage.json: "If false, then all requests,
    # including shared access signatures, must be authorized with Azure Active Directory (Azure AD).
    # The default value is null, which is equivalent to true.")
    settings = (Setting("properties.allowSharedKeyAccess", False, absent=True),)
    breaks = ("clients using an account key, a connection string with a key, or a SAS signed with an "
              "account key (account and service SAS) stop authenticating; only Microsoft Entra ID (and "
              "user delegation SAS) still work")

    def target_id(self, ctx: PlanContext) -> str:
        return _account_id(ctx.finding.resource_id)
