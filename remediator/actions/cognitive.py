"""AI services (``Microsoft.CognitiveServices/accounts``, every kind: OpenAI, AIServices, …).

``cognitive.restrict-network-access``
    Where the account has an approved private endpoint connection: ``publicNetworkAccess:
    Disabled`` (private endpoints only). Otherwise: ``networkAcls.defaultAction: Deny``, keeping the
    existing IP and virtual network rules and adding the playbook's. The plan says who is cut off
    (no private endpoint and no rule: every client); ``refuse_if_everyone_cut_off`` makes that a
    refusal. An account already at ``publicNetworkAccess: Disabled`` is compliant (no change).
``cognitive.disable-local-auth``
    ``disableLocalAuth: true``: API keys stop working, Microsoft Entra ID tokens only.

Both are declarations on :class:`~remediator.actions.properties.PropertyAction`: one PATCH by id
through azure-mgmt-resource's generic client at the pinned API version (no azure-mgmt-
cognitiveservices dependency for two properties). ``networkAcls`` is sent whole when it changes
(the rule lists are arrays, replaced whole by any merge; the object is sent whole so the write does
not depend on how the service merges nested objects).

API: Azure/azure-rest-api-specs specification/cognitiveservices/resource-manager/
Microsoft.CognitiveServices/stable/2024-10-01/cognitiveservices.json: ``Accounts_Update`` is a PATCH
of the ``Account`` document, ``x-ms-long-running-operation: true`` answering 200 or 202
(examples/UpdateAccount.json carries ``azure-AsyncOperation``); ``AccountProperties`` has
``publicNetworkAccess`` (Enabled|Disabled), ``networkAcls`` (``defaultAction`` Allow|Deny,
``ipRules[].value``, ``virtualNetworkRules[].id``) and ``disableLocalAuth``.

Role: Cognitive Services Contributor, 25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68 (MicrosoftDocs/azure-docs
articles/role-based-access-control/built-in-roles/ai-machine-learning.md: actions include
``Microsoft.CognitiveServices/*``, so ``accounts/write``; no Microsoft.Authorization writes). The
narrower Cognitive Services roles (OpenAI Contributor/User, Usages Reader, Custom Vision …) hold no
``accounts/write``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from remediator._json import json_copy
from remediator.actions.base import BuiltinRole, Params, PlanContext, register
from remediator.actions.private_endpoints import CutOff, cut_off, has_approved_private_endpoint
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.actions.storage import valid_ip_ranges, valid_subnet_ids

ACCOUNT_TYPE = "Microsoft.CognitiveServices/accounts"
API_VERSION = "2024-10-01"
COGNITIVE_SERVICES_CONTRIBUTOR = BuiltinRole("Cognitive Services Contributor",
                                             "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68")
PERMISSIONS = ("Microsoft.CognitiveServices/accounts/read", "Microsoft.CognitiveServices/accounts/write")
# What ARM means by an account without networkAcls: every network allowed.
OPEN_ACLS: Mapping[str, Any] = {"defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []}


class RestrictNetworkAccessParams(Params):
    allowed_ip_ranges: list[str] = Field(
        default_factory=list,
        description="Public IPv4 addresses or CIDR ranges to add to the account's IP rules when the firewall "
                    "is closed (no approved private endpoint), e.g. ['203.0.113.0/24', '198.51.100.7']. "
                    "Private ranges and /31, /32 prefixes are refused (give a single address instead).")
    allowed_subnet_ids: list[str] = Field(
        default_factory=list,
        description="ARM ids of subnets to add as virtual network rules (/subscriptions/…/virtualNetworks/"
                    "<vnet>/subnets/<subnet>); each needs the Microsoft.CognitiveServices service endpoint, "
                    "and the executor needs Microsoft.Network/virtualNetworks/subnets/joinViaServiceEndpoint/"
                    "action on it (not part of the grant on the account).")
    refuse_if_everyone_cut_off: bool = Field(
        default=False,
        description="Refuse the change (write nothing) when it would cut off every client: no approved "
                    "private endpoint and no IP or virtual network rule (existing or added).")

    @field_validator("allowed_ip_ranges")
    @classmethod
    def _valid_ranges(cls, value: list[str]) -> list[str]:
        return valid_ip_ranges(value, "Cognitive Services")

    @field_validator("allowed_subnet_ids")
    @classmethod
    def _valid_subnets(cls, value: list[str]) -> list[str]:
        return valid_subnet_ids(value)


def _public_disabled(doc: Mapping[str, Any]) -> bool:
    return str(get_path(doc, "properties.publicNetworkAccess", "Enabled")).lower() == "disabled"


@register
class RestrictNetworkAccess(PropertyAction[RestrictNetworkAccessParams]):
    """Restrict network access to an AI services account: private endpoints only, or a closed firewall.

    ```yaml
    name: cognitive-restrict-network-access
    description: Close AI services accounts (OpenAI, AIServices, …) to the public internet.
    match:
      # Azure AI Services resources should restrict network access
      recommendations: [f738efb8-005f-680d-3d43-b3db762d6243]
      policies: [037eea7a-bd0a-46c5-9a66-03aea78705d3]
      resource_types: [Microsoft.CognitiveServices/accounts]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: cognitive.restrict-network-access
        params:
          allowed_ip_ranges: [203.0.113.0/24]
          refuse_if_everyone_cut_off: true
    ```
    """

    name = "cognitive.restrict-network-access"
    summary = ("Disable public network access behind an approved private endpoint, else set the firewall "
               "to Deny keeping (and adding) allowed networks")
    Params = RestrictNetworkAccessParams
    resource_types = (ACCOUNT_TYPE,)
    permissions = PERMISSIONS
    role = COGNITIVE_SERVICES_CONTRIBUTOR
    api_version = API_VERSION
    settings = (Setting("properties.publicNetworkAccess", "Disabled", absent="Enabled"),
                Setting("properties.networkAcls", None, absent=OPEN_ACLS))
    whole = ("properties.networkAcls",)
    breaks = ("clients that are not behind an approved private endpoint or an allowed IP/virtual network "
              "rule get 403 from the account's endpoint (apps, notebooks, the AI Foundry portal from a "
              "browser outside those networks)")

    def values(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
               doc: Mapping[str, Any]) -> Mapping[str, Any]:
        if _public_disabled(doc):
            return {}
        if has_approved_private_endpoint(doc):
            return {"properties.publicNetworkAccess": "Disabled"}
        current = get_path(doc, "properties.networkAcls")
        acls: dict[str, Any] = json_copy(dict(current)) if isinstance(current, Mapping) else \
            json_copy(dict(OPEN_ACLS))
        acls["defaultAction"] = "Deny"
        ip_rules = [r for r in acls.get("ipRules") or [] if isinstance(r, Mapping)]
        have = {str(r.get("value", "")).lower() for r in ip_rules}
        ip_rules += [{"value": v} for v in params.allowed_ip_ranges if v.lower() not in have]
        acls["ipRules"] = ip_rules
        net_rules = [r for r in acls.get("virtualNetworkRules") or [] if isinstance(r, Mapping)]
        have = {str(r.get("id", "")).lower() for r in net_rules}
        net_rules += [{"id": s} for s in params.allowed_subnet_ids if s.lower() not in have]
        acls["virtualNetworkRules"] = net_rules
        return {"properties.networkAcls": acls}

    def _cut_off(self, params: RestrictNetworkAccessParams, doc: Mapping[str, Any]) -> CutOff:
        if has_approved_private_endpoint(doc):
            return cut_off(doc, closing="public")
        return cut_off(doc, closing="default", add_ip_rules=params.allowed_ip_ranges,
                       add_subnets=params.allowed_subnet_ids)

    def refusal(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
                doc: Mapping[str, Any]) -> str | None:
        if _public_disabled(doc) or str(get_path(doc, "properties.networkAcls.defaultAction", "Allow")) == "Deny":
            return None  # already closed: nobody newly cut off
        return self._cut_off(params, doc).refusal(params.refuse_if_everyone_cut_off)

    def notes(self, ctx: PlanContext, params: RestrictNetworkAccessParams,
              doc: Mapping[str, Any]) -> list[str]:
        return [self._cut_off(params, doc).sentence]


@register
class DisableLocalAuth(PropertyAction[NoParams]):
    """Disable key (local) authentication on an AI services account: Microsoft Entra ID only.

    ```yaml
    name: cognitive-disable-local-auth
    description: Turn off API key access to AI services accounts.
    match:
      # Azure AI Services resources should have key access disabled
      recommendations: [13b10b36-aa99-4db6-b00c-dcf87c4761e6]
      policies: [71ef260a-8f18-47b7-abcb-62d0673d94dc]
      resource_types: [Microsoft.CognitiveServices/accounts]
    risk: medium
    approval: {mode: slack, approvers: [S0SECENGINEERS], expires_after: 1d}
    steps:
      - action: cognitive.disable-local-auth
    ```
    """

    name = "cognitive.disable-local-auth"
    summary = "Set disableLocalAuth to true on the AI services account (Entra ID tokens only)"
    Params = NoParams
    resource_types = (ACCOUNT_TYPE,)
    permissions = PERMISSIONS
    role = COGNITIVE_SERVICES_CONTRIBUTOR
    api_version = API_VERSION
    settings = (Setting("properties.disableLocalAuth", True, absent=False),)
    breaks = ("clients calling with an API key (api-key / Ocp-Apim-Subscription-Key header, key-based SDK "
              "credentials, connection strings) stop authenticating; they need Microsoft Entra ID and a "
              "data-plane role such as Cognitive Services OpenAI User")
