"""Web Application Firewall policies of Application Gateway (``APP_GATEWAY_WAF_POLICY``) and Front Door
(``FRONT_DOOR_WAF_POLICY``): the front of the inference endpoints.

Both change by PUT of the policy (their PATCH changes tags only), without the spec's read-only properties
(network WafPolicyGet.json 2024-05-01, frontdoor WafPolicyGet.json 2024-02-01):

``waf.enable-request-body-inspection``  Application Gateway ``policySettings.requestBodyCheck: true``
    (Azure Policy ca85ef9a-741d-461d-8b7a-18c2da82c666).
``waf.enable-bot-protection``  the ``Microsoft_BotManagerRuleSet`` 1.0 managed rule set added
    (ebea0d86-7fbd-42e3-8a46-27e7568c2525).
``waf.set-mode``  ``policySettings.mode`` Prevention (12430be1-6cc8-4527-a9a8-e3d38f250096; its
    ``modeRequirement`` parameter defaults to Detection: set ``mode`` to what the assignment requires).
``frontdoor.enable-request-body-inspection``  Front Door ``policySettings.requestBodyCheck: Enabled``
    (4598f028-de1f-4694-8751-84dceb5f86b9).
``frontdoor.enable-bot-protection``  ``Microsoft_BotManagerRuleSet`` 1.0 added (27f7fb01-5fdb-44ad-954c-
    d582f8659533); refused on a Standard_AzureFrontDoor policy, which takes no managed rule sets.
``frontdoor.set-waf-mode``  ``policySettings.mode`` (425bea59-a659-4cbb-8d31-34499bd030b8).
``firewall.enable-threat-intel``  a classic-rules Azure Firewall's ``threatIntelMode`` from Off to Alert (or Deny)
    (7c591a93-c34c-464c-94ac-8f9f9a46e3d6; AzureFirewallGet.json, PUT of the firewall).
``firewall.enable-policy-threat-intel``  a firewall policy's ``threatIntelMode`` from Off to Alert (or Deny)
    (da79a7e2-8aa1-45ed-af81-ba050c153564), and ``firewall.enable-policy-dns-proxy`` its
    ``dnsSettings.enableProxy: true`` (3f84c9b0-8b64-4208-98d4-6ada96bb49c3); FirewallPolicyGet.json 2024-07-01,
    PUT of the policy.

All reversible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from remediator.actions.base import Example, Params, PlanContext, register
from remediator.actions.profiles import (
    APP_GATEWAY_WAF_POLICY,
    AZURE_FIREWALL,
    FIREWALL_POLICY,
    FRONT_DOOR_WAF_POLICY,
)
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path

RULE_SETS = "properties.managedRules.managedRuleSets"
BOT_MANAGER = "Microsoft_BotManagerRuleSet"
_AGW_READ_ONLY = ("properties.provisioningState", "properties.resourceState", "properties.applicationGateways",
                  "properties.httpListeners", "properties.pathBasedRules", "properties.applicationGatewayForContainers")
_FD_READ_ONLY = ("properties.provisioningState", "properties.resourceState", "properties.frontendEndpointLinks",
                 "properties.routingRuleLinks", "properties.securityPolicyLinks")


class _AgwPolicy(PropertyAction[Any]):
    profile = APP_GATEWAY_WAF_POLICY
    method = "PUT"
    read_only = _AGW_READ_ONLY


class _FdPolicy(PropertyAction[Any]):
    profile = FRONT_DOOR_WAF_POLICY
    method = "PUT"
    read_only = _FD_READ_ONLY


class _BotProtection(PropertyAction[NoParams]):
    known: ClassVar[tuple[str, ...]] = (BOT_MANAGER.lower(),)
    settings = (Setting(RULE_SETS, None),)

    def values(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        sets = get_path(doc, RULE_SETS, [])
        out = [dict(s) for s in sets if isinstance(s, Mapping)] if isinstance(sets, list) else []
        if not any(str(s.get("ruleSetType", "")).lower() in self.known for s in out):
            out.append({"ruleSetType": BOT_MANAGER, "ruleSetVersion": "1.0"})
        return {RULE_SETS: out}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if path == RULE_SETS and isinstance(have, list) and isinstance(want, list):
            def types(sets: list[Any]) -> set[str]:
                return {str(s.get("ruleSetType", "")).lower() for s in sets if isinstance(s, Mapping)}
            return types(have) == types(want)
        return super().same(path, have, want)


class ModeParams(Params):
    mode: Literal["Prevention", "Detection"] = "Prevention"
    """Prevention blocks matching requests; Detection only logs them (the mode the assignment requires)."""


@register
class EnableRequestBodyInspection(_AgwPolicy):
    """Set the Application Gateway WAF policy's requestBodyCheck to true: request bodies are inspected."""

    name = "waf.enable-request-body-inspection"
    settings = (Setting("properties.policySettings.requestBodyCheck", True, absent=False),)
    breaks = "requests whose bodies match a managed or custom rule (in Prevention mode) are blocked"
    example = Example("Application Gateway WAF policies inspect request bodies.",
                      why="Azure Web Application Firewall on Azure Application Gateway should have request body "
                          "inspection enabled",
                      policies=("ca85ef9a-741d-461d-8b7a-18c2da82c666",))


@register
class EnableBotProtection(_AgwPolicy, _BotProtection):
    """Add the Microsoft_BotManagerRuleSet managed rule set to an Application Gateway WAF policy."""

    name = "waf.enable-bot-protection"
    breaks = "requests from known bad bots are blocked (in Prevention mode), scrapers and crawlers included"
    example = Example("Application Gateway WAF policies run the bot protection rule set.",
                      why="Bot Protection should be enabled for Azure Application Gateway WAF",
                      policies=("ebea0d86-7fbd-42e3-8a46-27e7568c2525",))


@register
class SetMode(_AgwPolicy):
    """Set the Application Gateway WAF policy's mode (Prevention by default)."""

    name = "waf.set-mode"
    Params = ModeParams
    settings = (Setting("properties.policySettings.mode", "Prevention", absent="Detection"),)
    breaks = "in Prevention, requests matching a rule are blocked (403) instead of only logged: false positives too"
    example = Example("Application Gateway WAF policies block, not just log.",
                      why="Web Application Firewall (WAF) should use the specified mode for Application Gateway",
                      policies=("12430be1-6cc8-4527-a9a8-e3d38f250096",), params="{mode: Prevention}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.policySettings.mode": params.mode}


@register
class FrontDoorEnableRequestBodyInspection(_FdPolicy):
    """Set the Front Door WAF policy's requestBodyCheck to Enabled."""

    name = "frontdoor.enable-request-body-inspection"
    settings = (Setting("properties.policySettings.requestBodyCheck", "Enabled", absent="Enabled"),)
    breaks = "requests whose bodies match a rule (in Prevention mode) are blocked at the Front Door edge"
    example = Example("Front Door WAF policies inspect request bodies.",
                      why="Azure Web Application Firewall on Azure Front Door should have request body inspection "
                          "enabled",
                      policies=("4598f028-de1f-4694-8751-84dceb5f86b9",))


@register
class FrontDoorEnableBotProtection(_FdPolicy, _BotProtection):
    """Add the Microsoft_BotManagerRuleSet managed rule set to a Front Door WAF policy."""

    name = "frontdoor.enable-bot-protection"
    known = (BOT_MANAGER.lower(), "botprotection")
    breaks = "requests from known bad bots are blocked at the edge (in Prevention mode)"
    example = Example("Front Door WAF policies run the bot protection rule set.",
                      why="Bot Protection should be enabled for Azure Front Door WAF",
                      policies=("27f7fb01-5fdb-44ad-954c-d582f8659533",))

    def refusal(self, ctx: PlanContext, params: NoParams, doc: Mapping[str, Any]) -> str | None:
        sku = str(get_path(doc, "sku.name", ""))
        if sku.lower() == "standard_azurefrontdoor":
            return "a Standard_AzureFrontDoor policy takes no managed rule sets; bot protection needs Premium"
        return None


@register
class FrontDoorSetMode(_FdPolicy):
    """Set the Front Door WAF policy's mode (Prevention by default)."""

    name = "frontdoor.set-waf-mode"
    Params = ModeParams
    settings = (Setting("properties.policySettings.mode", "Prevention", absent="Detection"),)
    breaks = "in Prevention, requests matching a rule are blocked at the edge instead of only logged"
    example = Example("Front Door WAF policies block, not just log.",
                      why="Web Application Firewall (WAF) should use the specified mode for Azure Front Door Service",
                      policies=("425bea59-a659-4cbb-8d31-34499bd030b8",), params="{mode: Prevention}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.policySettings.mode": params.mode}


class ThreatIntelParams(Params):
    mode: Literal["Alert", "Deny"] = "Alert"
    """Alert logs traffic to and from known malicious addresses and domains; Deny also blocks it."""


@register
class EnableFirewallThreatIntel(PropertyAction[ThreatIntelParams]):
    """Set a classic-rules Azure Firewall's threatIntelMode (Alert by default; Deny kept)."""

    name = "firewall.enable-threat-intel"
    profile = AZURE_FIREWALL
    method = "PUT"
    read_only: ClassVar[tuple[str, ...]] = (
        "properties.provisioningState", "properties.ipConfigurations.*.properties.provisioningState",
        "properties.hubIPAddresses.publicIPs.addresses")
    settings = (Setting("properties.threatIntelMode", "Alert", absent="Alert"),)
    breaks = "with Alert nothing is blocked (matches are logged); with Deny, traffic to known malicious destinations"
    example = Example("Azure Firewalls with classic rules use threat intelligence.",
                      why="Azure Firewall Standard - Classic Rules should enable Threat Intelligence",
                      policies=("7c591a93-c34c-464c-94ac-8f9f9a46e3d6",), params="{mode: Alert}")

    def values(self, ctx: PlanContext, params: Any, doc: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"properties.threatIntelMode": params.mode}

    def same(self, path: str, have: Any, want: Any) -> bool:
        if want == "Alert" and isinstance(have, str) and have.lower() == "deny":
            return True  # stricter already
        return super().same(path, have, want)


_POLICY_READ_ONLY = ("properties.provisioningState", "properties.size", "properties.ruleCollectionGroups",
                     "properties.firewalls", "properties.childPolicies")


@register
class EnablePolicyThreatIntel(EnableFirewallThreatIntel):
    """Set a firewall policy's threatIntelMode (Alert by default; Deny kept)."""

    name = "firewall.enable-policy-threat-intel"
    profile = FIREWALL_POLICY
    read_only = _POLICY_READ_ONLY
    example = Example("Firewall policies use threat intelligence.",
                      why="Azure Firewall Policy should enable Threat Intelligence",
                      policies=("da79a7e2-8aa1-45ed-af81-ba050c153564",), params="{mode: Alert}")


@register
class EnablePolicyDnsProxy(PropertyAction[NoParams]):
    """Set a firewall policy's dnsSettings.enableProxy to true: its firewalls resolve and log DNS for clients."""

    name = "firewall.enable-policy-dns-proxy"
    profile = FIREWALL_POLICY
    method = "PUT"
    read_only = _POLICY_READ_ONLY
    settings = (Setting("properties.dnsSettings.enableProxy", True, absent=False),)
    breaks = ("nothing stops by itself; FQDN network rules start to work, and clients see DNS through the firewall "
              "only once their networks point their DNS at it")
    example = Example("Firewall policies proxy DNS, so FQDN rules hold.",
                      why="Azure Firewall Policy should have DNS Proxy Enabled",
                      policies=("3f84c9b0-8b64-4208-98d4-6ada96bb49c3",))
