"""AI services (``Microsoft.CognitiveServices/accounts``, every kind: OpenAI, AIServices, …), on the
``COGNITIVE_ACCOUNT`` profile.

``cognitive.restrict-network-access`` (the firewall family, ``remediator.actions.firewall``)
    ``mode`` defaults to ``auto``: where the account has an approved private endpoint connection,
    ``publicNetworkAccess: Disabled`` (private endpoints only); otherwise ``networkAcls.defaultAction:
    Deny``, keeping the existing IP and virtual network rules and adding the playbook's. The account's
    trusted-service bypass is left as it is.
``cognitive.disable-local-auth``
    ``disableLocalAuth: true``: API keys stop working, Microsoft Entra ID tokens only.

Both are declarations: one PATCH by id through azure-mgmt-resource's generic client at the pinned API
version (no azure-mgmt-cognitiveservices dependency for two properties); ``AccountProperties`` has
``publicNetworkAccess`` (Enabled|Disabled), ``networkAcls`` (``defaultAction`` Allow|Deny,
``ipRules[].value``, ``virtualNetworkRules[].id``) and ``disableLocalAuth`` (cognitiveservices.json
2024-10-01).
"""

from __future__ import annotations

from typing import ClassVar

from remediator.actions.base import Example, register
from remediator.actions.firewall import Firewall, FirewallAction, Mode, SubnetRulesParams
from remediator.actions.profiles import COGNITIVE_ACCOUNT
from remediator.actions.properties import NoParams, PropertyAction, Setting


class RestrictNetworkAccessParams(SubnetRulesParams):
    # cognitiveservices.json 2024-10-01 NetworkRuleSet: rules {"value"} / {"id"}; an absent rule set allows every
    # network. cognitive-services-virtual-networks.md: IPv4 only, RFC 1918 refused, "/31 or /32 prefix sizes are
    # not supported. Configure these ranges by using individual IP address rules."
    firewall: ClassVar[Firewall] = Firewall(open={"defaultAction": "Allow", "ipRules": [], "virtualNetworkRules": []})
    mode: Mode = "auto"
    """auto (default): publicNetworkAccess Disabled when the account has an approved private endpoint, else the
    firewall's default action Deny. firewall: Deny (rules kept, the allowed ones added). private-endpoint:
    publicNetworkAccess Disabled, refused without an approved private endpoint."""


@register
class RestrictNetworkAccess(FirewallAction[RestrictNetworkAccessParams]):
    """Close an AI services account: private endpoints only when it has one, else the firewall at Deny."""

    name = "cognitive.restrict-network-access"
    profile = COGNITIVE_ACCOUNT
    breaks = ("clients that are not behind an approved private endpoint or an allowed IP/virtual network "
              "rule get 403 from the account's endpoint (apps, notebooks, the AI Foundry portal from a "
              "browser outside those networks)")
    example = Example("Close AI services accounts (OpenAI, AIServices, …) to the public internet.",
                      why="Azure AI Services resources should restrict network access",
                      recommendations=("f738efb8-005f-680d-3d43-b3db762d6243",),
                      policies=("037eea7a-bd0a-46c5-9a66-03aea78705d3",),
                      params="{allowed_ip_ranges: [203.0.113.0/24], refuse_if_everyone_cut_off: true}")


@register
class DisableLocalAuth(PropertyAction[NoParams]):
    """Set disableLocalAuth to true: Microsoft Entra ID tokens only, no API keys."""

    name = "cognitive.disable-local-auth"
    profile = COGNITIVE_ACCOUNT
    settings = (Setting("properties.disableLocalAuth", True, absent=False),)
    breaks = ("clients calling with an API key (api-key / Ocp-Apim-Subscription-Key header, key-based SDK "
              "credentials, connection strings) stop authenticating; they need Microsoft Entra ID and a "
              "data-plane role such as Cognitive Services OpenAI User")
    example = Example("Turn off API key access to AI services accounts.",
                      why="Azure AI Services resources should have key access disabled",
                      recommendations=("13b10b36-aa99-4db6-b00c-dcf87c4761e6",),
                      policies=("71ef260a-8f18-47b7-abcb-62d0673d94dc",))
