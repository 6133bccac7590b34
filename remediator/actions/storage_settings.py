"""Storage account settings beyond network and public access (``STORAGE_ACCOUNT`` and ``BLOB_SERVICE``).

On the account (StorageAccounts_Update, a PATCH; ``StorageAccountPropertiesUpdateParameters``, storage.json
stable 2023-05-01; the StorageAccountUpdate.json example shows what a GET returns):

``storage.disable-cross-tenant-replication``  ``allowCrossTenantReplication: false`` (Azure Policy
    92a89a79-6c52-4a7e-a03f-61306fc49312 reads ``notEquals false``, so an absent value is written too).
``storage.set-sas-expiration-policy``  ``sasPolicy {sasExpirationPeriod, expirationAction}``: the longest
    validity a SAS should have (``max_days``, 7 by default, what 7aa1c9d5-3d7e-4579-8117-d85e99211757 asks) and
    what a longer one does (``Log`` or ``Block``); a shorter existing period is kept (bc1b984e-ddae-40cc-801a-
    050a030e4fbe only asks for a policy).
``storage.set-minimum-tls``  ``minimumTlsVersion`` (TLS1_2 by default; a newer one is kept).
``storage.require-secure-transfer``  ``supportsHttpsTrafficOnly: true`` (Modify f81e3117-0093-4b17-8a60-
    82363134f0eb's value).
``storage.allow-trusted-services``  ``AzureServices`` added to ``networkAcls.bypass`` (c9d007d0-c057-4772-b18c-
    01e546713bcd): this one widens access, to Azure services that Microsoft lists as trusted.
``storage.restrict-to-virtual-networks``  ``networkAcls.defaultAction: Deny`` and no IP rules (2a1a9cdf-e04d-
    429a-8416-3bfb72a1b26f): only virtual network rules and private endpoints remain; refused when neither
    exists (every client would be cut off).

On the account's blob service ``blobServices/default`` (BlobServices_SetServiceProperties, a PUT; the
BlobServicesGet.json example): ``storage.enable-blob-versioning`` (``isVersioningEnabled: true``, Modify
978deb5d-c9a7-41f8-b4b2-b76880d0de1f's value) and ``storage.enable-soft-delete`` (blob and container delete
retention, ``days`` 7 by default: what DeployIfNotExists 9fbd64e3-67b8-489b-98e5-fa0007d17e76 deploys). Both
keep data the account would have dropped: they cost storage, so their playbooks are high risk.

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from remediator.actions.base import Example, Params, PlanContext, register
from remediator.actions.profiles import BLOB_SERVICE, STORAGE_ACCOUNT
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.actions.storage import account_id

_TLS = ("TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3")


class _Account(PropertyAction[Any]):
    profile = STORAGE_ACCOUNT

    def target_id(self, ctx: PlanContext) -> str:
        return account_id(ctx.finding.resource_id)


@register
class DisableCrossTenantReplication(_Account):
    """Set allowCrossTenantReplication to false: object replication only within the account's tenant."""

    name = "storage.disable-cross-tenant-replication"
    settings = (Setting("properties.allowCrossTenantReplication", False),)
    breaks = ("object replication policies whose other account is in another Microsoft Entra tenant stop "
              "replicating (new cross-tenant policies are refused)")
    example = Example("Training data must not replicate to storage accounts in other tenants.",
                      why="Storage accounts should prevent cross tenant object replication",
                      policies=("92a89a79-6c52-4a7e-a03f-61306fc49312",))


class SasPolicyParams(Params):
    max_days: int = Field(default=7, ge=1, le=365)
    """The longest validity a SAS should have, in days (7: Azure Policy 7aa1c9d5's limit)."""
    expiration_action: Literal["Log", "Block"] = "Log"
    """What a SAS valid for longer does: Log (it works, the request is logged as such) or Block (refused)."""


def _days(period: object) -> float | None:
    """``d.hh:mm:ss`` (a SAS expiration period) in days; None when unreadable."""
    text = str(period or "")
    day, _, clock = text.partition(".")
    try:
        h, m, s = (int(x) for x in clock.split(":")) if clock else (0, 0, 0)
        return int(day) + (h * 3600 + m * 60 + s) / 86400
    except ValueError:
        return None


@register
class SetSasExpirationPolicy(_Account):
    """Set sasPolicy: the longest validity a SAS should have, and whether a longer one is logged or blocked."""

    name = "storage.set-sas-expiration-policy"
    Params = SasPolicyParams
    settings = (Setting("properties.sasPolicy", None),)
    breaks = ("with Block, requests with a SAS valid for longer than the limit are refused (403); with Log they "
              "work and are logged")
    example = Example("Storage accounts need a SAS expiration policy of at most 7 days.",
                      why="Storage SAS tokens should adhere to 7 day maximum validity",
                      policies=("7aa1c9d5-3d7e-4579-8117-d85e99211757",),
                      params="{max_days: 7, expiration_action: Log}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.sasPolicy": {"sasExpirationPeriod": f"{params.max_days}.00:00:00",
                                         "expirationAction": params.expiration_action}}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if isinstance(have, Mapping) and isinstance(want, Mapping):
            have_days, want_days = _days(have.get("sasExpirationPeriod")), _days(want.get("sasExpirationPeriod"))
            shorter = have_days is not None and want_days is not None and have_days <= want_days
            block = str(have.get("expirationAction", "")).lower() == "block"
            return shorter and (block or str(want.get("expirationAction", "")).lower() != "block")
        return super().same(path, have, want)


class MinimumTlsParams(Params):
    minimum_tls_version: Literal["TLS1_2", "TLS1_3"] = "TLS1_2"
    """The oldest TLS version the account accepts (the policy's minimumTlsVersion parameter)."""


@register
class SetMinimumTls(_Account):
    """Set minimumTlsVersion (TLS1_2 by default; a newer version is kept)."""

    name = "storage.set-minimum-tls"
    Params = MinimumTlsParams
    settings = (Setting("properties.minimumTlsVersion", "TLS1_2", absent="TLS1_0"),)
    breaks = "clients that negotiate only an older TLS version (old SDKs, .NET Framework defaults) cannot connect"
    example = Example("Storage accounts accept TLS 1.2 and newer only.",
                      why="Storage accounts should have the specified minimum TLS version",
                      policies=("fe83a0eb-a853-422d-aac2-1bffd182c5d0",), params="{minimum_tls_version: TLS1_2}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.minimumTlsVersion": params.minimum_tls_version}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if want in ("TLS1_2", "TLS1_3") and isinstance(have, str) and have.upper() in _TLS:  # a newer one is kept
            return _TLS.index(have.upper()) >= _TLS.index(want)
        return super().same(path, have, want)


@register
class RequireSecureTransfer(_Account):
    """Set supportsHttpsTrafficOnly to true: requests over plain HTTP (and SMB without encryption) are refused."""

    name = "storage.require-secure-transfer"
    settings = (Setting("properties.supportsHttpsTrafficOnly", True, absent=True),)
    breaks = "clients calling blob, queue or table endpoints over http:// and SMB 2.1 / SMB 3.0 without encryption"
    example = Example("Storage accounts accept secure transfer (HTTPS) only.",
                      why="Secure transfer to storage accounts should be enabled",
                      policies=("404c3081-a854-4457-ae30-26a93ef643f9",))


@register
class AllowTrustedServices(_Account):
    """Add AzureServices to networkAcls.bypass: Azure services on Microsoft's trusted list reach the account
    through its firewall."""

    name = "storage.allow-trusted-services"
    settings = (Setting("properties.networkAcls.bypass", "AzureServices", absent="AzureServices"),)
    breaks = ("nothing is cut off: this widens access, to the trusted Azure services (Backup, Event Grid, Monitor, "
              "… as Microsoft lists them) through the firewall")
    example = Example("Storage firewalls let trusted Azure services through.",
                      why="Storage accounts should allow access from trusted Microsoft services",
                      policies=("c9d007d0-c057-4772-b18c-01e546713bcd",))

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        have = str(get_path(doc, "properties.networkAcls.bypass", "") or "")
        parts = [p.strip() for p in have.split(",") if p.strip() and p.strip().lower() != "none"]
        if not any(p.lower() == "azureservices" for p in parts):
            parts.append("AzureServices")
        return {"properties.networkAcls.bypass": ", ".join(parts)}


@register
class RestrictToVirtualNetworks(_Account):
    """Set networkAcls.defaultAction to Deny and remove its IP rules: virtual network rules and private
    endpoints only."""

    name = "storage.restrict-to-virtual-networks"
    settings = (Setting("properties.networkAcls.defaultAction", "Deny", absent="Allow"),
                Setting("properties.networkAcls.ipRules", [], absent=[]))
    whole = ("properties.networkAcls",)
    breaks = "every client admitted by an IP rule or by the Allow default (the Internet) loses access"
    example = Example("Storage accounts admit virtual networks and private endpoints only, no IP rules.",
                      why="Storage accounts should restrict network access using virtual network rules",
                      policies=("2a1a9cdf-e04d-429a-8416-3bfb72a1b26f",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        from remediator.actions.private_endpoints import has_approved_private_endpoint  # noqa: PLC0415

        if get_path(doc, "properties.networkAcls.virtualNetworkRules") or has_approved_private_endpoint(doc):
            return None
        return ("the account has no virtual network rule and no approved private endpoint: every client would be "
                "cut off; add one first")


class _BlobService(PropertyAction[Any]):
    profile = BLOB_SERVICE
    resource_types = (BLOB_SERVICE.type, STORAGE_ACCOUNT.type)
    method = "PUT"
    read_only = ("sku",)

    def target_id(self, ctx: PlanContext) -> str:
        return f"{account_id(ctx.finding.resource_id)}/blobServices/default"


@register
class EnableBlobVersioning(_BlobService):
    """Set the blob service's isVersioningEnabled to true: every overwrite or delete keeps the previous version."""

    name = "storage.enable-blob-versioning"
    settings = (Setting("properties.isVersioningEnabled", True, absent=False),)
    breaks = ("nothing stops working; every overwritten or deleted blob keeps a billed previous version (add a "
              "lifecycle rule to expire old versions)")
    example = Example("Keep previous versions of training data blobs.",
                      why="Configure your Storage account to enable blob versioning",
                      policies=("c36a325b-ae04-4863-ad4f-19c6678f8e08",), risk="high",
                      approval="{mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 1d}")


class SoftDeleteParams(Params):
    days: int = Field(default=7, ge=1, le=365)
    """How many days deleted blobs and containers are kept (1-365)."""


@register
class EnableSoftDelete(_BlobService):
    """Turn on blob and container soft delete: deleted data is kept ``days`` days."""

    name = "storage.enable-soft-delete"
    Params = SoftDeleteParams
    settings = (Setting("properties.deleteRetentionPolicy", None, absent={"enabled": False}),
                Setting("properties.containerDeleteRetentionPolicy", None, absent={"enabled": False}))
    breaks = "nothing stops working; deleted blobs and containers are billed for the retention days"
    example = Example("Deleted training data stays recoverable for a week.",
                      why="Configure soft delete for blobs and containers on Storage Accounts",
                      policies=("9fbd64e3-67b8-489b-98e5-fa0007d17e76",), resource_types=(STORAGE_ACCOUNT.type,),
                      risk="high", approval="{mode: slack, approvers: [security-oncall], quorum: 2, expires_after: 1d}",
                      params="{days: 7}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        want = {"enabled": True, "days": params.days}
        return {"properties.deleteRetentionPolicy": want, "properties.containerDeleteRetentionPolicy": want}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if isinstance(have, Mapping) and isinstance(want, Mapping) and want.get("enabled") is True:
            return have.get("enabled") is True  # on already: its own retention is kept
        return super().same(path, have, want)
