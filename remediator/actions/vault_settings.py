"""Key Vault's permission model, and Managed HSM (``KEY_VAULT``, ``MANAGED_HSM``).

``keyvault.enable-rbac-authorization``  ``enableRbacAuthorization: true`` (Azure Policy 12d4fa5e-1f9f-4c21-
    97a9-b99b3c6611b5): data-plane access is decided by Azure role assignments; the vault's access policies
    stop applying. Every principal that reached keys, secrets or certificates through an access policy
    loses access until it holds a Key Vault data role, so the plan counts them and the playbook is high risk.
``keyvault.enable-soft-delete``  ``enableSoftDelete: true`` alone (1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d, "Key vaults
    should have soft delete enabled"), for a vault that has it off without asking for purge protection as
    ``keyvault.enable-purge-protection`` does. An absent property is ARM's default, on (keyvault.json: "default":
    true since 2019-09-01), so only an explicit ``false`` is planned. IRREVERSIBLE: "Once soft-delete is enabled,
    it can't be disabled" (MicrosoftDocs/azure-docs articles/key-vault/general/soft-delete-overview.md).
``managedhsm.enable-purge-protection``  ``enablePurgeProtection: true`` (c39ba22d-4428-4149-b981-70acb31fc383),
    IRREVERSIBLE as for vaults: purge protection cannot be turned off.
``managedhsm.deny-public-network``  ``networkAcls.defaultAction: Deny`` (19ea9d63-adee-4431-a95e-1913c6c1c75f,
    Modify 84d327c3-164a-4685-b453-900478614456's value; the HSM's ``MHSMNetworkRuleSet``, managedHsm.json
    2024-11-01, ManagedHsm_Get.json has none: the default admits every network).

Vaults_Update is a PATCH (200); ManagedHsms_Update a long-running PATCH.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from remediator.actions.base import Example, PlanContext, register
from remediator.actions.profiles import KEY_VAULT, MANAGED_HSM
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.words import plural

HIGH = "{mode: slack, approvers: [security-oncall, security-leads], quorum: 2, expires_after: 1d}"


@register
class EnableRbacAuthorization(PropertyAction[NoParams]):
    """Set enableRbacAuthorization to true: Azure RBAC decides data-plane access; access policies stop applying."""

    name = "keyvault.enable-rbac-authorization"
    profile = KEY_VAULT
    settings = (Setting("properties.enableRbacAuthorization", True, absent=False),)
    breaks = ("every app, pipeline and user that reads keys, secrets or certificates through an access policy gets "
              "403 until it holds a Key Vault data role (Key Vault Secrets User, Crypto User, …) on the vault")
    example = Example("Key Vaults use Azure RBAC, not access policies.",
                      why="Azure Key Vault should use RBAC permission model",
                      policies=("12d4fa5e-1f9f-4c21-97a9-b99b3c6611b5",), risk="high", approval=HIGH)

    def notes(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Sequence[str]:
        policies = get_path(doc, "properties.accessPolicies", [])
        count = len(policies) if isinstance(policies, list) else 0
        return [f"{plural(count, 'access policy', 'access policies')} stop applying"]


@register
class EnableSoftDelete(PropertyAction[NoParams]):
    """Set a Key Vault's enableSoftDelete to true: a deleted vault and its objects stay recoverable for the
    retention period (purge protection is left as it is)."""

    name = "keyvault.enable-soft-delete"
    profile = KEY_VAULT
    settings = (Setting("properties.enableSoftDelete", True, absent=True),)
    irreversible = "soft delete cannot be turned off once enabled (Key Vault allows only true)"
    breaks = ("a deleted vault, key, secret or certificate is kept, recoverable, for the retention period: the "
              "vault's name stays taken until it is purged, and scripts that delete and re-create a vault of the "
              "same name must purge or recover it first")
    example = Example("Key Vaults holding model keys keep deleted keys recoverable.",
                      why="Key vaults should have soft delete enabled",
                      policies=("1e66c121-a66a-4b1f-9b83-0fd99bf0fc2d",), risk="high", approval=HIGH)

    def notes(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Sequence[str]:
        days = get_path(doc, "properties.softDeleteRetentionInDays", 90)
        return (f"soft-delete retention: {plural(int(days), 'day')} (deleted objects are kept that long)",)


@register
class EnableHsmPurgeProtection(PropertyAction[NoParams]):
    """Set a managed HSM's enablePurgeProtection (and enableSoftDelete) to true; it cannot be turned off."""

    name = "managedhsm.enable-purge-protection"
    profile = MANAGED_HSM
    settings = (Setting("properties.enableSoftDelete", True, absent=True),
                Setting("properties.enablePurgeProtection", True, absent=False))
    irreversible = "Azure never lets purge protection be turned off again"
    breaks = ("a deleted HSM (and its keys) is kept for the whole retention period and cannot be purged: its name "
              "stays taken, teardown scripts that purge fail")
    example = Example("Managed HSMs holding model keys cannot be purged.",
                      why="Azure Key Vault Managed HSM should have purge protection enabled",
                      policies=("c39ba22d-4428-4149-b981-70acb31fc383",), risk="high", approval=HIGH)


@register
class DenyHsmPublicNetwork(PropertyAction[NoParams]):
    """Set a managed HSM's networkAcls.defaultAction to Deny: only its rules, trusted services and private
    endpoints reach it."""

    name = "managedhsm.deny-public-network"
    profile = MANAGED_HSM
    settings = (Setting("properties.networkAcls.defaultAction", "Deny", absent="Allow"),)
    breaks = "clients outside the HSM's IP and virtual network rules and private endpoints get 403"
    example = Example("Managed HSMs are closed to the public network.",
                      why="[Preview]: Azure Key Vault Managed HSM should disable public network access",
                      policies=("19ea9d63-adee-4431-a95e-1913c6c1c75f",))
