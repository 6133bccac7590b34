"""Azure Cosmos DB accounts (``Microsoft.DocumentDB/databaseAccounts``), on the ``COSMOS_ACCOUNT`` profile:
the document and vector stores an AI estate grounds its answers in.

``DatabaseAccountUpdateProperties`` (cosmos-db.json, stable 2024-11-15) has ``disableLocalAuth``,
``disableKeyBasedMetadataWriteAccess``, ``publicNetworkAccess`` (Enabled|Disabled|SecuredByPerimeter),
``ipRules[].ipAddressOrRange`` and ``isVirtualNetworkFilterEnabled``; the GET example
(CosmosDBDatabaseAccountGet.json) shows ``ipRules: []`` and ``disableKeyBasedMetadataWriteAccess: false``.

``cosmos.disable-local-auth``
    ``disableLocalAuth: true`` (Azure Policy 5450f5bd-9c72-4390-a9c4-a7aba4edfdd2, Modify
    dc2d41d1-4ab1-4666-a3e1-3d51c43e0049). Refused for the MongoDB, Cassandra, Table and Gremlin APIs,
    which both definitions leave out (``capabilities[*].name`` notIn EnableMongo, EnableCassandra,
    EnableTable, EnableGremlin): their wire protocols authenticate with keys.
``cosmos.disable-key-based-metadata-writes``
    ``disableKeyBasedMetadataWriteAccess: true`` (Azure Policy 4750c32b-89c0-46af-bfcb-2e4541a818d5, an
    ``append`` of that value).
``cosmos.disable-public-network-access``
    ``publicNetworkAccess: Disabled`` (797b37f7-06b8-444c-b1ad-fc62867f335a, Modify
    da69ba51-aaf1-41e5-8651-607cd0b37088).
``cosmos.remove-azure-datacenters-rule``
    Removes the ``0.0.0.0`` IP rule, which Cosmos DB reads as "accept connections from within public Azure
    datacenters" (any tenant's Azure resources), from ``ipRules`` (12339a85-a25c-4f17-9f82-4766f13f5c4c).
``cosmos.restrict-network-access``
    Adds the playbook's ``allowed_ip_ranges`` as IP rules, so that only they (and virtual network rules) reach
    the account (862e97cf-49fc-4a5c-9de4-40d4e2e7c8eb, "should have firewall rules").

All are one PATCH (DatabaseAccounts_Update, long-running) and reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from remediator.actions.base import Example, Params, PlanContext, no_items, register
from remediator.actions.firewall import PrivateEndpointsOnly, PublicAccessParams, ip_key, valid_ip_ranges
from remediator.actions.profiles import COSMOS_ACCOUNT
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

IP_RULES = "properties.ipRules"
AZURE_DATACENTERS = ip_key("0.0.0.0")  # noqa: S104 - Cosmos DB's "all Azure datacenters" rule, not a bind
KEY_ONLY_APIS = ("EnableMongo", "EnableCassandra", "EnableTable", "EnableGremlin")


def _rules(doc: Mapping[str, Any]) -> list[Any]:
    rules = get_path(doc, IP_RULES, [])
    return list(rules) if isinstance(rules, list) else []


@register
class DisableLocalAuth(PropertyAction[NoParams]):
    """Set disableLocalAuth to true: data-plane requests with account keys or resource tokens are refused."""

    name = "cosmos.disable-local-auth"
    profile = COSMOS_ACCOUNT
    settings = (Setting("properties.disableLocalAuth", True, absent=False),)
    breaks = ("clients using the account's primary/secondary keys, connection strings or resource tokens get "
              "401; they need Microsoft Entra ID and a Cosmos DB data-plane role assignment")
    example = Example("Cosmos DB accounts holding grounding data accept Entra ID only, no account keys.",
                      why="Cosmos DB database accounts should have local authentication methods disabled",
                      policies=("5450f5bd-9c72-4390-a9c4-a7aba4edfdd2",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        caps = get_path(doc, "properties.capabilities", [])
        names = {str(c.get("name", "")).lower() for c in caps if isinstance(c, Mapping)} if isinstance(caps, list) \
            else set()
        api = next((c for c in KEY_ONLY_APIS if c.lower() in names), None)
        if api:
            return (f"the account has capability {api}: that API authenticates with keys only, so disabling "
                    "local authentication would lock every client out (Azure Policy exempts it too)")
        return None


@register
class DisableKeyBasedMetadataWrites(PropertyAction[NoParams]):
    """Set disableKeyBasedMetadataWriteAccess to true: databases, containers and throughput change only
    through ARM (Entra ID and RBAC), not with account keys."""

    name = "cosmos.disable-key-based-metadata-writes"
    profile = COSMOS_ACCOUNT
    settings = (Setting("properties.disableKeyBasedMetadataWriteAccess", True, absent=False),)
    breaks = ("SDK or tool calls that create or change databases, containers, throughput or indexing policies "
              "with an account key fail (403); they must go through ARM (az, Bicep, Terraform)")
    example = Example("Stop account keys from changing Cosmos DB databases and containers.",
                      why="Azure Cosmos DB key based metadata write access should be disabled",
                      policies=("4750c32b-89c0-46af-bfcb-2e4541a818d5",))


@register
class DisablePublicNetworkAccess(PrivateEndpointsOnly[PublicAccessParams]):
    """Disable public network access on a Cosmos DB account: approved private endpoints only."""

    name = "cosmos.disable-public-network-access"
    profile = COSMOS_ACCOUNT
    breaks = ("every client outside the account's approved private endpoints (IP rules, virtual network "
              "rules, the portal's Data Explorer from a browser) loses access")
    example = Example("Close Cosmos DB accounts to the public network; private endpoints only.",
                      why="Azure Cosmos DB should disable public network access",
                      policies=("797b37f7-06b8-444c-b1ad-fc62867f335a",),
                      params="{refuse_if_everyone_cut_off: true}")


@register
class RemoveAzureDatacentersRule(PropertyAction[NoParams]):
    """Remove the 0.0.0.0 IP rule ("accept connections from within public Azure datacenters")."""

    name = "cosmos.remove-azure-datacenters-rule"
    profile = COSMOS_ACCOUNT
    settings = (Setting(IP_RULES, [], absent=[]),)
    breaks = ("Azure services without a listed IP or virtual network rule (Functions, Data Factory, Stream "
              "Analytics, any tenant's VMs) stop reaching the account")
    example = Example("Cosmos DB accounts must not accept traffic from every Azure datacenter.",
                      why="Azure Cosmos DB accounts should not allow traffic from all Azure data centers",
                      policies=("12339a85-a25c-4f17-9f82-4766f13f5c4c",))

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {IP_RULES: [r for r in _rules(doc)
                           if not (isinstance(r, Mapping) and ip_key(r.get("ipAddressOrRange")) == AZURE_DATACENTERS)]}


class RestrictNetworkAccessParams(Params):
    allowed_ip_ranges: list[str] = Field(default_factory=no_items, min_length=1)
    """Public IPv4 addresses or CIDR ranges allowed to reach the account, e.g. ['203.0.113.0/24'] (at least
    one); added to the account's IP rules."""

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _valid_ranges(cls, value: list[str]) -> list[str]:
        return valid_ip_ranges(value, frozenset())


@register
class RestrictNetworkAccess(PropertyAction[RestrictNetworkAccessParams]):
    """Add IP rules: only the allowed ranges (and virtual network rules) reach the account."""

    name = "cosmos.restrict-network-access"
    profile = COSMOS_ACCOUNT
    settings = (Setting(IP_RULES, [], absent=[]),)
    breaks = ("with IP rules set, every address outside them (and outside virtual network rules) is refused, "
              "the Azure portal's Data Explorer included unless its addresses are listed")
    example = Example("Cosmos DB accounts open to every network get a firewall of the allowed ranges.",
                      why="Azure Cosmos DB accounts should have firewall rules",
                      policies=("862e97cf-49fc-4a5c-9de4-40d4e2e7c8eb",),
                      params="{allowed_ip_ranges: [203.0.113.0/24]}")

    def values(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
               doc: Mapping[str, Any]) -> Mapping[str, Any]:
        rules = _rules(doc)
        have = {ip_key(r.get("ipAddressOrRange")) for r in rules if isinstance(r, Mapping)}
        added = [{"ipAddressOrRange": v} for v in params.allowed_ip_ranges if ip_key(v) not in have]
        return {IP_RULES: rules + added}
