"""Key Vault actions: keep the vault holding model encryption keys off public networks and erasable
by nobody.

``keyvault.restrict-network-access`` (the firewall family, ``remediator.actions.firewall``)
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

Both are declarations on the ``KEY_VAULT`` profile (``remediator.actions.profiles``: 2024-11-01,
``Vaults_Update`` a synchronous PATCH; Key Vault Contributor), written through the generic client (no
azure-mgmt-keyvault dependency; see requirements.txt).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.firewall import Firewall, FirewallAction, SubnetRulesParams, TrustedServicesParams
from remediator.actions.profiles import KEY_VAULT
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.words import plural


class RestrictNetworkAccessParams(SubnetRulesParams, TrustedServicesParams):
    # keyvault.json 2024-11-01 NetworkRuleSet: bypass AzureServices | None, rules {"value"} / {"id"}; a single
    # address comes back as a /32 (examples/createVaultWithNetworkAcls.json: "124.56.78.91" → "124.56.78.91/32").
    # network-security.md: IPv4 only, RFC 1918 refused; it says nothing of /31, refused as on Storage.
    firewall: ClassVar[Firewall] = Firewall(
        open={"defaultAction": "Allow", "bypass": "AzureServices", "ipRules": [], "virtualNetworkRules": []},
        bypass="properties.networkAcls.bypass", single_address="/32")


@register
class RestrictNetworkAccess(FirewallAction[RestrictNetworkAccessParams]):
    """Close a Key Vault: networkAcls default Deny (rules kept, added), or private endpoints only."""

    name = "keyvault.restrict-network-access"
    profile = KEY_VAULT
    breaks = ("clients outside the allowed networks (or, with public access disabled, outside the private "
              "endpoints) get 403 ForbiddenByFirewall on keys and secrets: apps, CI, and Azure services "
              "when bypass is None")
    example = Example("Key Vaults holding model keys must not accept traffic from any network.",
                      policies=("55615ac9-af46-4a59-874e-391cc3dfb490",),
                      params="{mode: auto, bypass: AzureServices, allowed_ip_ranges: [203.0.113.0/24]}")


@register
class EnablePurgeProtection(PropertyAction[NoParams]):
    """Turn on a Key Vault's purge protection (and soft delete where off), for good: no early erasing.

    Nobody, not an attacker with Owner nor a mistake, can then erase its keys for the retention period."""

    name = "keyvault.enable-purge-protection"
    profile = KEY_VAULT
    settings = (
        # soft delete defaults to on (keyvault.json: "default": true) and cannot be disabled once on
        Setting("properties.enableSoftDelete", True, absent=True),
        Setting("properties.enablePurgeProtection", True, absent=False),
    )
    breaks = ("a deleted vault, key, secret or certificate can no longer be purged before its retention "
              "ends: the name stays taken and the object recoverable until then (re-deploying a vault of "
              "the same name fails, and teardown scripts that purge fail)")
    irreversible = "purge protection cannot be turned off once enabled (Key Vault allows only true)"
    example = Example("Key Vaults holding model keys must not be erasable; purge protection is permanent.",
                      policies=("0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",), risk="high",
                      approval="{mode: slack, approvers: [security-oncall, security-leads], quorum: 2, "
                               "expires_after: 1d}")

    def notes(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Sequence[str]:
        days = get_path(doc, "properties.softDeleteRetentionInDays", 90)
        return (f"soft-delete retention: {plural(int(days), 'day')} (deleted objects are kept and cannot be purged "
                "for that long; the retention is fixed once set)",)
