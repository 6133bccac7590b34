"""Key Vault actions: keep the vault holding model encryption keys off public networks and erasable
by nobody. Both are declarations on :class:`~remediator.actions.properties.PropertyAction`.

``keyvault.restrict-network-access``
    ``networkAcls.defaultAction: Deny`` keeping the vault's IP and virtual network rules and adding
    the playbook's (``bypass`` a parameter: ``AzureServices`` or ``None``), or
    ``publicNetworkAccess: Disabled`` where the vault has an approved private endpoint connection
    (``mode``). Azure Policy 55615ac9-af46-4a59-874e-391cc3dfb490 ("Azure Key Vault should have
    firewall enabled or public network access disabled") accepts either. The note says who is cut
    off (``remediator.actions.private_endpoints.cut_off``); ``refuse_if_everyone_cut_off`` makes "no
    approved private endpoint and no rule" a refusal. Reversible.
``keyvault.enable-purge-protection``
    ``enablePurgeProtection: true``, and ``enableSoftDelete: true`` where a vault has it off (Azure
    Policy 0b60c0b2-2dc2-4e1c-b5c9-abbed971de53, "Key vaults should have deletion protection
    enabled"). **Irreversible**: "Once enabled, purge protection can't be disabled" (and soft delete
    cannot be turned off either), MicrosoftDocs/azure-docs
    ``articles/key-vault/general/soft-delete-overview.md``. The plan says so and ``undo`` refuses.

API. ``Microsoft.KeyVault/vaults`` at 2024-11-01 (Azure/azure-rest-api-specs
``specification/keyvault/resource-manager/Microsoft.KeyVault/stable/2024-11-01/keyvault.json``):
``Vaults_Update`` is a synchronous PATCH (200/201, no ``x-ms-long-running-operation``) of
``VaultPatchProperties``. The PATCH carries ``networkAcls`` whole (``whole``): it is one
``NetworkRuleSet`` object, and sending only ``defaultAction`` must not be trusted to keep the rules.
The generic client is used (no azure-mgmt-keyvault dependency; see requirements.txt).

Role. Key Vault Contributor (f25e0fa2-a7c8-4377-a976-54943a77a395) holds
``Microsoft.KeyVault/*`` (management plane) and no data actions: "Manage key vaults, but does not
allow you to assign roles in Azure RBAC, and does not allow you to access secrets, keys, or
certificates" (MicrosoftDocs/azure-docs ``articles/role-based-access-control/built-in-roles/
security.md``); Azure Policy's own "Configure key vaults to enable firewall" (ac673a9a-…-1c01dc,
``built-in-policies/policyDefinitions/Key Vault/FirewallEnabled_Modify.json``) remediates with the
same role. The narrower-looking Key Vault Administrator / Officer roles are data-plane roles and
cannot write ``vaults/write``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from remediator import ids
from remediator.actions import private_endpoints
from remediator.actions.base import BuiltinRole, Params, PlanContext, register
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path, public_ipv4_range

VAULT_TYPE = "Microsoft.KeyVault/vaults"
API_VERSION = "2024-11-01"
KEY_VAULT_CONTRIBUTOR = BuiltinRole("Key Vault Contributor", "f25e0fa2-a7c8-4377-a976-54943a77a395")
SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
_PERMISSIONS = (
    "Microsoft.KeyVault/vaults/read",
    "Microsoft.KeyVault/vaults/write",
)


def _acls(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    value = get_path(doc, "properties.networkAcls", {})
    return value if isinstance(value, Mapping) else {}


def _ip_key(value: str) -> str:
    """An IP rule compared as Key Vault stores it (a single address is ``a.b.c.d/32``)."""
    text = value.strip().strip("'")
    try:
        return str(ipaddress.ip_network(text, strict=False)).lower()
    except ValueError:
        return text.lower()


class RestrictNetworkAccessParams(Params):
    mode: Literal["firewall", "private-endpoint", "auto"] = Field(
        default="firewall",
        description="firewall: networkAcls.defaultAction Deny (rules kept and added). private-endpoint: "
                    "publicNetworkAccess Disabled, refused unless the vault has an approved private endpoint "
                    "connection. auto: private-endpoint when there is one, else firewall.")
    bypass: Literal["AzureServices", "None"] | None = Field(
        default=None,
        description="Trusted Microsoft services past the firewall (AzureServices) or not (None). Default: keep "
                    "the vault's current bypass (AzureServices when unset).")
    allowed_ip_ranges: list[str] = Field(
        default_factory=list,
        description="Public IPv4 addresses or CIDR ranges to add as IP rules, e.g. ['203.0.113.0/24'].")
    allowed_subnet_ids: list[str] = Field(
        default_factory=list,
        description="Subnet ids to add as virtual network rules (the subnet needs the Microsoft.KeyVault "
                    "service endpoint).")
    refuse_if_everyone_cut_off: bool = Field(
        default=False,
        description="Refuse (plan nothing) when no client would keep access: no approved private endpoint and "
                    "no IP or virtual network rule.")

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _valid_ranges(cls, value: list[str]) -> list[str]:
        return [public_ipv4_range(item, "Key Vault") for item in value]

    @field_validator("allowed_subnet_ids")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        for item in value:
            rid = ids.parse(item)
            if ids.type_key(rid.type) != SUBNET_TYPE or not rid.subscription_id or len(rid.names) != 2:
                raise ValueError(f"{item!r} is not a subnet id; expected /subscriptions/<id>/resourceGroups/"
                                 "<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>")
        return [v.strip() for v in value]


@register
class RestrictNetworkAccess(PropertyAction[RestrictNetworkAccessParams]):
    """Close a Key Vault to the public Internet: firewall default Deny (rules kept, playbook's added)
    or public network access off behind an approved private endpoint.

    ```yaml
    name: keyvault-restrict-network-access
    description: Key Vaults holding model keys must not accept traffic from any network.
    match:
      policies: [55615ac9-af46-4a59-874e-391cc3dfb490]
      resource_types: [Microsoft.KeyVault/vaults]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: keyvault.restrict-network-access
        params: {mode: auto, bypass: AzureServices, allowed_ip_ranges: [203.0.113.0/24]}
    ```
    """

    name = "keyvault.restrict-network-access"
    summary = ("networkAcls.defaultAction Deny (rules kept and added) or publicNetworkAccess Disabled behind "
               "a private endpoint")
    Params = RestrictNetworkAccessParams
    resource_types = (VAULT_TYPE,)
    api_version = API_VERSION
    settings = (
        Setting("properties.networkAcls.defaultAction", "Deny", absent="Allow"),
        Setting("properties.networkAcls.bypass", "AzureServices", absent="AzureServices"),
        Setting("properties.networkAcls.ipRules", [], absent=[]),
        Setting("properties.networkAcls.virtualNetworkRules", [], absent=[]),
        Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),
    )
    whole = ("properties.networkAcls",)
    permissions = _PERMISSIONS
    role = KEY_VAULT_CONTRIBUTOR
    breaks = ("clients outside the allowed networks (or, with public access disabled, outside the private "
              "endpoints) get 403 ForbiddenByFirewall on keys and secrets: apps, CI, and Azure services "
              "when bypass is None")

    def _private(self, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> bool:
        return params.mode == "private-endpoint" or (
            params.mode == "auto" and private_endpoints.has_approved_private_endpoint(doc))

    def refusal(self, ctx: PlanContext, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> str | None:
        if params.mode == "private-endpoint" and not private_endpoints.has_approved_private_endpoint(doc):
            return ("the vault has no approved private endpoint connection: disabling public network access "
                    "would cut off every client (use mode firewall or auto)")
        return self._cut_off(params, doc).refusal(params.refuse_if_everyone_cut_off)

    def _cut_off(self, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> private_endpoints.CutOff:
        if self._private(params, doc):
            return private_endpoints.cut_off(doc, closing="public")
        return private_endpoints.cut_off(doc, closing="default", add_ip_rules=params.allowed_ip_ranges,
                                         add_subnets=params.allowed_subnet_ids)

    def values(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
               doc: Mapping[str, Any]) -> Mapping[str, Any]:
        if str(get_path(doc, "properties.publicNetworkAccess", "Enabled")).lower() == "disabled":
            return {}  # private endpoints only already: the firewall no longer matters
        if self._private(params, doc):
            return {"properties.publicNetworkAccess": "Disabled"}
        acls = _acls(doc)
        ip_rules = [dict(r) for r in acls.get("ipRules") or [] if isinstance(r, Mapping)]
        have_ips = {_ip_key(str(r.get("value", ""))) for r in ip_rules}
        for ip in params.allowed_ip_ranges:
            if _ip_key(ip) not in have_ips:
                ip_rules.append({"value": ip})
                have_ips.add(_ip_key(ip))
        vnet_rules = [dict(r) for r in acls.get("virtualNetworkRules") or [] if isinstance(r, Mapping)]
        have_nets = {str(r.get("id", "")).lower() for r in vnet_rules}
        for subnet in params.allowed_subnet_ids:
            if subnet.lower() not in have_nets:
                vnet_rules.append({"id": subnet})
                have_nets.add(subnet.lower())
        bypass = params.bypass or str(acls.get("bypass") or "AzureServices")
        return {
            "properties.networkAcls.defaultAction": "Deny",
            "properties.networkAcls.bypass": bypass,
            "properties.networkAcls.ipRules": ip_rules,
            "properties.networkAcls.virtualNetworkRules": vnet_rules,
        }

    def notes(self, ctx: PlanContext, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> Sequence[str]:
        return (self._cut_off(params, doc).sentence,)


@register
class EnablePurgeProtection(PropertyAction[NoParams]):
    """Turn on purge protection (and soft delete where it is off) on a Key Vault, so that nobody,
    not an attacker with Owner nor a mistake, can erase its keys for the retention period.

    ```yaml
    name: keyvault-enable-purge-protection
    description: Key Vaults holding model keys must not be erasable; purge protection is permanent.
    match:
      policies: [0b60c0b2-2dc2-4e1c-b5c9-abbed971de53]
      resource_types: [Microsoft.KeyVault/vaults]
    risk: high
    approval: {mode: slack, approvers: [S0SECENGINEERS, U05K8NQ2R7T], quorum: 2, expires_after: 1d}
    steps:
      - action: keyvault.enable-purge-protection
    ```
    """

    name = "keyvault.enable-purge-protection"
    summary = "enablePurgeProtection true (and enableSoftDelete true where off); cannot be turned off again"
    Params = NoParams
    resource_types = (VAULT_TYPE,)
    api_version = API_VERSION
    settings = (
        # soft delete defaults to on (keyvault.json: "default": true) and cannot be disabled once on
        Setting("properties.enableSoftDelete", True, absent=True),
        Setting("properties.enablePurgeProtection", True, absent=False),
    )
    permissions = _PERMISSIONS
    role = KEY_VAULT_CONTRIBUTOR
    breaks = ("a deleted vault, key, secret or certificate can no longer be purged before its retention "
              "ends: the name stays taken and the object recoverable until then (re-deploying a vault of "
              "the same name fails, and teardown scripts that purge fail)")
    irreversible = "purge protection cannot be turned off once enabled (Key Vault allows only true)"

    def notes(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Sequence[str]:
        days = get_path(doc, "properties.softDeleteRetentionInDays", 90)
        return (f"soft-delete retention: {days} days (deleted objects are kept and cannot be purged for that "
                "long; the retention is fixed once set)",)
