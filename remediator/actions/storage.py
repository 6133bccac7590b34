"""Storage account actions: declarations on the ``STORAGE_ACCOUNT`` profile.

``storage.restrict-network-access`` (the firewall family, ``remediator.actions.firewall``)
    The storage firewall's ``networkAcls.defaultAction`` becomes ``Deny``; IP rules, virtual network
    rules and resource access rules stay, the playbook may add public IPv4 ranges and subnets and
    choose the trusted-service ``bypass`` (default: keep the account's, ``AzureServices`` when none is
    set, which is ARM's default), or close the account to all but its private endpoints (``mode``).
``storage.disable-public-network-access``
    ``publicNetworkAccess: Disabled`` (private endpoints only); the plan says who is cut off.
``storage.disable-shared-key-access``
    ``allowSharedKeyAccess: false`` (Entra ID only); the plan says key and SAS clients stop.
``storage.disable-public-blob-access``
    ``allowBlobPublicAccess: false`` on the account (anonymous access off for every container at
    once) and, for the containers the finding names (a Defender alert such as ``Storage.Blob_OpenACL``
    names the container it saw opened), the container's own ``publicAccess: None``, so re-enabling
    the account setting later does not silently re-open them: the account's declaration plus the
    container's (``BLOB_CONTAINER`` profile), one change each.

A finding on anything under an account (a container) acts on the account. All are reversible:
``undo`` puts the previous values back.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from remediator import ids
from remediator.actions.base import ApplyResult, Example, Params, PlanContext, register
from remediator.actions.change import Change
from remediator.actions.firewall import (
    Firewall,
    FirewallAction,
    PrivateEndpointsOnly,
    PublicAccessParams,
    SubnetRulesParams,
)
from remediator.actions.profiles import BLOB_CONTAINER, STORAGE_ACCOUNT
from remediator.actions.properties import NoParams, PropertyAction, Setting
from remediator.azure.state import StateReader
from remediator.errors import ActionError

if TYPE_CHECKING:
    from remediator.azure.clients import ArmClients

CONTAINER_TYPE = BLOB_CONTAINER.type
# container names: 3-63 lower-case letters, digits and single hyphens; plus the system containers
_CONTAINER_NAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}|\$root|\$web|\$logs)$")
_BYPASS_VALUES = ("AzureServices", "Logging", "Metrics")
_SUBNET = ("/subscriptions/3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41/resourceGroups/rg-net/providers/Microsoft.Network/"
           "virtualNetworks/hub/subnets/apps")


def account_id(resource_id: str) -> str:
    """The storage account id of an account or of anything under it (original casing kept)."""
    parts = resource_id.strip().rstrip("/").split("/")
    for i, part in enumerate(parts):
        if part.lower() == "storageaccounts" and i + 1 < len(parts) and i > 0 and \
                parts[i - 1].lower() == "microsoft.storage":
            return "/".join(parts[: i + 2])
    raise ActionError(f"{resource_id}: not a storage account or a resource under one")


class _AccountDeclaration(PropertyAction[Any]):
    """A declaration on the finding's storage account (also for a finding on a container)."""

    profile = STORAGE_ACCOUNT

    def target_id(self, ctx: PlanContext) -> str:
        return account_id(ctx.finding.resource_id)


# --- storage.restrict-network-access -----------------------------------------------------------------


class RestrictNetworkAccessParams(SubnetRulesParams):
    # storage.json 2023-05-01 NetworkRuleSet: bypass "AzureServices, Logging, Metrics" (any combination, or
    # None), rules {"value"|"id", "action": "Allow"}; an absent rule set is ARM's all-open default; a virtual
    # network rule's "state" is read-only (storage.json VirtualNetworkRule). /31: storage-network-security-
    # limitations.md.
    firewall: ClassVar[Firewall] = Firewall(
        open={"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [], "defaultAction": "Allow"},
        bypass="properties.networkAcls.bypass", rule_action="Allow", read_only=("state",))
    bypass: list[Literal["AzureServices", "Logging", "Metrics"]] | None = None
    """Traffic allowed past the firewall regardless of rules. Default: keep the account's current bypass
    (AzureServices when none is set). [] means none."""

    def bypass_value(self) -> str | None:
        if self.bypass is None:
            return None
        return ", ".join(v for v in _BYPASS_VALUES if v in self.bypass) or "None"


@register
class RestrictNetworkAccess(FirewallAction[RestrictNetworkAccessParams], _AccountDeclaration):
    """Close the storage firewall: networkAcls default Deny, rules kept and the allowed ones added."""

    name = "storage.restrict-network-access"
    # adding a virtual network rule joins the subnet through its service endpoint
    extra_permissions = ("Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/action",)
    breaks = ("clients outside the allowed networks and private endpoints get 403 on blobs, files, queues and "
              "tables (apps, pipelines, the portal's data views from elsewhere)")
    example = Example("Close the storage firewall to everything but the listed networks.",
                      why="Access to storage accounts with firewall and virtual network configurations should be "
                          "restricted",
                      recommendations=("45d313c3-3fca-5040-035f-d61928366d31",),
                      approval="{mode: slack, approvers: [security-oncall], expires_after: 4h}",
                      params=f"{{allowed_ip_ranges: [203.0.113.0/24], allowed_subnet_ids: [{_SUBNET}], "
                             "bypass: [AzureServices]}")


# --- storage.disable-public-network-access / storage.disable-shared-key-access ---------------------


@register
class DisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams], _AccountDeclaration):
    """Disable public network access on a storage account: only approved private endpoints still reach it.

    Stronger than ``storage.restrict-network-access`` (firewall default Deny): with
    ``publicNetworkAccess: Disabled`` the firewall's IP and virtual network rules no longer admit
    anything; the plan says who is cut off."""

    name = "storage.disable-public-network-access"
    breaks = ("every client outside the account's approved private endpoints (Internet, IP rules, "
              "virtual network service endpoints) loses access to blobs, files, queues and tables")
    example = Example("Close storage accounts to the public network; private endpoints only.",
                      why="Storage accounts should disable public network access",
                      policies=("b2982f36-99f2-4db5-8eff-283140c09693",), params="{refuse_if_everyone_cut_off: true}")


@register
class DisableSharedKeyAccess(_AccountDeclaration):
    """Set allowSharedKeyAccess to false: Microsoft Entra ID authorization only, no keys or key SAS."""

    name = "storage.disable-shared-key-access"
    # storage.json: "If false, then all requests, including shared access signatures, must be authorized with
    # Azure Active Directory (Azure AD). The default value is null, which is equivalent to true."
    settings = (Setting("properties.allowSharedKeyAccess", False, absent=True),)
    breaks = ("clients using an account key, a connection string with a key, or a SAS signed with an "
              "account key (account and service SAS) stop authenticating; only Microsoft Entra ID (and "
              "user delegation SAS) still work")
    example = Example("Stop shared key (account key and key-signed SAS) access to storage accounts.",
                      why="Storage accounts should prevent shared key access",
                      recommendations=("3b363842-30f5-4056-980d-3a40fa5de8b3",),
                      policies=("8c6a50c6-9ffd-4ae7-986f-5fa6111f9a54",))


# --- storage.disable-public-blob-access ------------------------------------------------------------


class DisablePublicBlobAccessParams(Params):
    named_containers: bool = True
    """Also set publicAccess to None on the blob containers the finding names (an alert's container, or a
    finding on a container). The account setting alone already blocks anonymous access; this keeps the
    containers private if it is ever turned back on."""


class _PrivateContainer(PropertyAction[NoParams]):
    """A named container's own ``publicAccess: None`` (the second half of disable-public-blob-access)."""

    name = "storage.disable-public-blob-access"
    profile = BLOB_CONTAINER
    settings = (Setting("properties.publicAccess", "None", absent="None"),)


@register
class DisablePublicBlobAccess(_AccountDeclaration):
    """Disallow anonymous (public) blob access on a storage account and its named containers."""

    name = "storage.disable-public-blob-access"
    summary = "Set allowBlobPublicAccess to false on the account (and publicAccess None on named containers)"
    Params = DisablePublicBlobAccessParams
    resource_types = (STORAGE_ACCOUNT.type, CONTAINER_TYPE)
    extra_permissions = BLOB_CONTAINER.permissions
    # an account from before the setting has none, which ARM treats as allowed
    settings = (Setting("properties.allowBlobPublicAccess", False, absent=True),)
    breaks = "anonymous (public) reads of every container in the account stop, static sites and shared links too"
    example = Example("Turn off anonymous blob access on storage accounts that Defender flags.",
                      why="Storage account public access should be disallowed",
                      recommendations=("51fd8bb1-0db4-bbf1-7e2b-cfcba7eb66a6",),
                      alerts=("Storage.Blob_OpenACL", "Storage.Blob_AnonymousAccessAnomaly"),
                      resource_types=(STORAGE_ACCOUNT.type,), risk="low", approval="auto",
                      params="{named_containers: true}")
    container: ClassVar[_PrivateContainer] = _PrivateContainer()

    def plan(self, ctx: PlanContext, params: DisablePublicBlobAccessParams) -> list[Change]:
        changes = super().plan(ctx, params)
        if not params.named_containers:
            return changes
        account = account_id(ctx.finding.resource_id)
        for name in self._container_names(ctx):
            cid = f"{account}/blobServices/default/containers/{name}"
            if ctx.state.get(cid) is None:  # deleted since, or not saved: the account setting still covers it
                ctx.missing(cid, "blob container", "its own publicAccess was not checked (the account's "
                            "allowBlobPublicAccess still blocks anonymous access to it)")
                continue
            changes.extend(self.container.plan_for(ctx, NoParams(), cid))
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

    @staticmethod
    def _on_container(change: Change) -> bool:
        return ids.type_key(ids.resource_type(change.resource_id)) == ids.type_key(CONTAINER_TYPE)

    def apply(self, clients: ArmClients, change: Change) -> ApplyResult:
        return self.container.apply(clients, change) if self._on_container(change) else super().apply(clients, change)

    def verify(self, state: StateReader, change: Change) -> str | None:
        return self.container.verify(state, change) if self._on_container(change) else super().verify(state, change)

    def undo(self, change: Change) -> Change:
        return self.container.undo(change) if self._on_container(change) else super().undo(change)
