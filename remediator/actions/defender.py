"""Microsoft Defender for Cloud plans: a plan switched off is a blind spot, so switch it on.

``defender.enable-plan`` puts one Defender plan of a subscription (``Microsoft.Security/pricings/
{plan}``: ``AI``, ``StorageAccounts``, ``KeyVaults``, ``Containers``, ``Arm``, ``CosmosDbs``,
``VirtualMachines``, ``CloudPosture`` …) at ``pricingTier: Standard``, with the playbook's ``sub_plan``
and ``extensions`` (``OnUploadMalwareScanning`` with its ``CapGBPerMonthPerStorageAccount``,
``SensitiveDataDiscovery`` …): what the Azure Policy definitions "Microsoft Defender for … should be
enabled" check (their ``existenceCondition`` on ``Microsoft.Security/pricings/pricingTier``, ``subPlan``
and ``extensions[*]``, Azure/azure-policy built-in-policies/policyDefinitions/Security Center/).

The finding's resource is the subscription (those definitions are ``AuditIfNotExists`` on
``Microsoft.Resources/subscriptions``; Defender's recommendations name the subscription) or the pricing
itself ("Security Center standard pricing tier should be selected", a1181c5f-672a-477a-979a-7d58aa086233,
audits ``Microsoft.Security/pricings``). The plan reads the pricing (a ``GET`` of it, as
``az security pricing show`` saves it) and changes only what differs: the tier, the sub-plan when the
playbook names one, and each named extension's ``isEnabled`` (and its properties when given); the other
extensions are kept as they are.

**At a resource.** The "Security Center - Granular Pricing" definitions (Azure/azure-policy built-in-policies/
policyDefinitions/Security Center - Granular Pricing/ASC_Azure_Defender_Servers_*_ResourceLevel*_DINE.json) deploy
the pricing at a machine: ``{resourceId}/providers/Microsoft.Security/pricings/VirtualMachines``. Pricings_Update
(security 2024-01-01 pricings.json) takes such a scope for virtual machines, scale sets and Arc machines, for plan
``VirtualMachines`` and sub-plan ``P1`` only (PutResourcePricingByNameVirtualMachines_example.json); ``enforce`` is
subscription-level only. Its GET answers for every machine: ``inherited: "True"`` and ``inheritedFrom`` the
subscription while the machine follows it (GetResourcePricingByNameVirtualMachines_example.json), ``"False"`` once it
has its own setting. A finding on such a machine plans that pricing (``tier: Free`` turns the plan off there, as the
"to be disabled" definitions do; ``own_setting`` wants the machine's own setting, not an inherited one); undo of a
setting the machine inherited deletes its own one (Pricings_Delete, DeleteResourcePricing_example.json: 200, or 204
when absent), so that it inherits again. The grant is the same role at the machine: role assignments are made at a
management group, subscription, resource group or resource (Azure RBAC "Understand scope"), and a role at a resource
covers its extension resources (``remediator.actions.change.grant_scope``).

**What counts as compliant** is what the definition checks, which is not always all it deploys:
``compliant_if: all`` (the default) wants the tier, the sub-plan, ``enforce`` and every named extension as the
playbook says; ``sub_plan`` wants the tier, sub-plan and ``enforce`` (the basic Storage definition, 17bc14a7, checks
those and deploys its extensions off); ``tier`` wants the tier alone (the P1-by-tag definition, 9e4879d9, checks
``pricingTier`` and deploys ``subplan: P1``). The rest is what a plan that changes anyway gets.

It costs money: the note says so and links the plan's pricing page (no figure is guessed: it depends
on the plan, the sub-plan, the region and the resources covered). Writes are a ``PUT`` of the pricing
(Pricings_Update, 2024-01-01: 200/201, not long-running) under a grant of Security Admin at the
subscription (``remediator.actions.change.grant_scope``). Undo puts the previous tier back, with its
sub-plan and extensions when it was Standard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Example, Params, PlanContext, label, no_items, register
from remediator.actions.change import Change, without_etag
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import COSMOS_ACCOUNT, DEFENDER_PLAN, THREAT_PROTECTION_SETTING
from remediator.actions.properties import NoParams, PropertyAction, Setting, get_path
from remediator.azure.reader import register_api_version
from remediator.azure.state import StateReader
from remediator.checks import params as checks
from remediator.errors import ActionError

PRICING_TYPE = DEFENDER_PLAN.type
register_api_version(PRICING_TYPE, DEFENDER_PLAN.api_version)
PRICING_PAGE = "https://azure.microsoft.com/pricing/details/defender-for-cloud/"
# The pricing names of the 2024-01-01 API (pricings.json, ListPricings_example.json and the Azure Policy
# definitions' details.name); a misspelt plan in a playbook is refused with the closest.
PLANS: tuple[str, ...] = ("AI", "Api", "AppServices", "Arm", "CloudPosture", "Containers", "ContainerRegistry",
                          "CosmosDbs", "Dns", "KeyVaults", "KubernetesService", "OpenSourceRelationalDatabases",
                          "SqlServers", "SqlServerVirtualMachines", "StorageAccounts", "VirtualMachines")
# Properties a PUT carries (PricingProperties; freeTrialRemainingTime, enablementTime, deprecated,
# replacedBy, resourcesCoverageStatus, inherited and inheritedFrom are read-only).
WRITABLE = ("pricingTier", "subPlan", "enforce", "extensions")
# The resources a pricing can be set at (Pricings_Update, 2024-01-01: "Supported resources are: 'VirtualMachines,
# VMSS and ARC Machines' and only for plan='VirtualMachines' and subPlan='P1'").
RESOURCE_LEVEL_TYPES = ("Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets",
                        "Microsoft.HybridCompute/machines")
RESOURCE_LEVEL_PLAN = "VirtualMachines"
RESOURCE_LEVEL_SUB_PLAN = "P1"
EXTENSION_WRITABLE = ("name", "isEnabled", "additionalExtensionProperties")
# What turning an extension on does beyond the bill, said in the plan's note (Microsoft Defender for Cloud docs:
# "Enable user prompt evidence" for AI threat protection, "Defender sensor" for Containers).
EXTENSION_EFFECTS = {
    "aipromptevidence": "Defender's AI alerts will carry excerpts of the suspicious prompts and completions (the data "
                        "this project protects; remediator never copies them, it says where to read them)",
    "aipromptsharingwithpurview": "prompts and completions are shared with Microsoft Purview for data security",
    "containersensor": "the Defender sensor is deployed as a DaemonSet on every AKS cluster of the subscription",
}


class ExtensionParams(Params):
    """One extension of the plan, by name, and whether it must be on."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    """The extension's name in the pricing (OnUploadMalwareScanning, SensitiveDataDiscovery, AgentlessVmScanning …)."""
    enabled: bool = True
    """Whether it must be on (true) or off (false)."""
    properties: dict[str, str] = Field(default_factory=dict)
    """Its additionalExtensionProperties when it is turned on (CapGBPerMonthPerStorageAccount: "10000"), as strings;
    an extension already on keeps its own."""


class EnablePlanParams(Params):
    plan: str | None = None
    """The Defender plan (the pricing's name: AI, StorageAccounts, KeyVaults, Containers, Arm, CosmosDbs,
    VirtualMachines, CloudPosture …); needed when the finding names the subscription or a machine."""
    tier: Literal["Standard", "Free"] = "Standard"
    """Standard turns the plan on (it costs money); Free turns it off (the "to be disabled" definitions)."""
    sub_plan: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    """The plan's sub-plan (DefenderForStorageV2, PerTransaction, P1, P2 …); unset: what the plan has or defaults to."""
    extensions: list[ExtensionParams] = Field(default_factory=no_items)
    """Extensions that must be on (or off); the others are kept as they are."""
    enforce: Literal["True", "False"] | None = None
    """At a subscription: "True" forces its pricing on every resource under it (no resource may override it)."""
    compliant_if: Literal["all", "sub_plan", "tier"] = "all"
    """What the definition checks: all (tier, sub-plan, enforce and the named extensions), sub_plan (tier, sub-plan
    and enforce) or tier (the tier alone); what it does not check is set only with a change that happens anyway."""
    own_setting: bool = False
    """At a machine: it must have its own pricing (inherited "False"), not only the subscription's."""

    _known_plan = field_validator("plan")(checks.per_class(checks.known_name, lambda cls: {
        "known": list(PLANS), "what": "Defender plan"}))
    _unique = field_validator("extensions")(checks.unique_names)


def _on(value: Any) -> bool:
    """An extension's ``isEnabled``: ARM writes the strings ``"True"``/``"False"`` (any case)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _extensions(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = props(doc).get("extensions")
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _with_properties(have: Mapping[str, Any], want: Mapping[str, str]) -> dict[str, Any]:
    """``have`` with each of ``want`` set; a key matches case-insensitively (ARM answers
    ``capGBPerMonthPerStorageAccount: 10`` to a PUT of ``CapGBPerMonthPerStorageAccount: "10"``) and a
    value that reads the same as text is kept as ARM wrote it."""
    out = dict(have)
    for key, value in want.items():
        same = next((k for k in out if k.lower() == key.lower()), None)
        if same is not None and str(out[same]).lower() == value.lower():
            continue
        if same is not None:
            del out[same]
        out[key] = value
    return out


def _tier(doc: Mapping[str, Any]) -> str:
    """The pricing's tier, spelt as the API's enum (Azure Policy's deployments write ``free``)."""
    tier = str(props(doc).get("pricingTier") or "Free")
    return "Standard" if tier.lower() == "standard" else "Free" if tier.lower() == "free" else tier


def at_resource(pricing_id: str) -> bool:
    """Whether a pricing id is set at a resource (``{resourceId}/providers/Microsoft.Security/pricings/{plan}``)
    rather than at a subscription."""
    return pricing_id.lower().count("/providers/") > 1


def _scope(pricing_id: str) -> str:
    """The scope a pricing is set at: the subscription, or the resource."""
    return pricing_id[: pricing_id.lower().rindex("/providers/")]


def _inherited(doc: Mapping[str, Any]) -> bool:
    """A resource-level pricing that follows its parent's (``inherited: "True"``; read-only, a string)."""
    return _on(props(doc).get("inherited"))


@register
class EnablePlan(ChildResourceAction[EnablePlanParams]):
    """Put a Microsoft Defender for Cloud plan of the subscription at the Standard tier, with its extensions."""

    name = "defender.enable-plan"
    summary = "Turn a Defender for Cloud plan on (pricingTier Standard, sub-plan and extensions); it costs money"
    profile = DEFENDER_PLAN
    resource_types = ("subscription", PRICING_TYPE, *RESOURCE_LEVEL_TYPES)
    writable = WRITABLE
    example = Example(
        "Turn on Microsoft Defender for Storage with malware scanning and sensitive data discovery.",
        why="Microsoft Defender for Storage should be enabled (policy, and the Defender recommendation)",
        recommendations=("1be22853-8ed1-4005-9907-ddad64cb1417",),
        policies=("640d2586-54d2-465f-877f-9ffc1d2109f4",), resource_types=("subscription",), risk="high",
        approval="{mode: slack, approvers: [security-leads, platform-owners], quorum: 2, expires_after: 1d}",
        params="{plan: StorageAccounts, sub_plan: DefenderForStorageV2, extensions: [{name: OnUploadMalwareScanning, "
               "properties: {CapGBPerMonthPerStorageAccount: '10000'}}, {name: SensitiveDataDiscovery}]}")

    # plan --------------------------------------------------------------------------------------------
    def target(self, ctx: PlanContext, params: EnablePlanParams) -> str:
        """The pricing the finding is about: its own id, or the subscription's pricing of ``params.plan``."""
        rid = ids.parse(ctx.finding.resource_id)
        if ids.type_key(rid.type) == ids.type_key(PRICING_TYPE):
            if params.plan and params.plan.lower() != rid.name.lower():
                raise ActionError(f"the finding is about Defender plan {rid.name}, the playbook's step names "
                                  f"plan {params.plan}", action=self.name, resource_id=ctx.finding.resource_id)
            return ctx.finding.resource_id
        machine = bool(rid.namespace and rid.resource_group)
        if machine and ids.type_key(rid.type) not in {ids.type_key(t) for t in RESOURCE_LEVEL_TYPES}:
            raise ActionError(f"a Defender plan is set at a subscription, or at a {' or '.join(RESOURCE_LEVEL_TYPES)}"
                              f" (Pricings_Update, 2024-01-01), not at a {rid.type}", action=self.name,
                              resource_id=ctx.finding.resource_id)
        if not rid.subscription_id or ((rid.namespace or rid.resource_group) and not machine):
            raise ActionError("expected a subscription, a machine or a Microsoft.Security/pricings resource",
                              action=self.name, resource_id=ctx.finding.resource_id)
        if not params.plan:
            raise ActionError(f"the finding names the {'machine' if machine else 'subscription'}: the step needs "
                              f"params.plan (the Defender plan: {', '.join(PLANS)})", action=self.name,
                              resource_id=ctx.finding.resource_id)
        if machine:
            return f"{ids.parse(ctx.finding.resource_id).id}/providers/Microsoft.Security/pricings/{params.plan}"
        return f"/subscriptions/{rid.subscription_id}/providers/Microsoft.Security/pricings/{params.plan}"

    def _refuse_at_resource(self, ctx: PlanContext, params: EnablePlanParams, target: str) -> None:
        """What Pricings_Update refuses at a resource, refused at plan time with the reason."""
        plan = ids.parse(target).name
        why = ""
        if plan.lower() != RESOURCE_LEVEL_PLAN.lower():
            why = f"only plan {RESOURCE_LEVEL_PLAN} can be set at a resource, not {plan}"
        elif params.tier == "Standard" and (params.sub_plan or "").lower() != RESOURCE_LEVEL_SUB_PLAN.lower():
            why = (f"at a resource plan {plan} takes sub-plan {RESOURCE_LEVEL_SUB_PLAN} only; the step names "
                   f"{params.sub_plan or 'none'}")
        elif params.extensions or params.enforce:
            why = "extensions and enforce are set on the subscription's plan, not at a resource"
        else:
            sub = f"/subscriptions/{ids.parse(target).subscription_id}/providers/Microsoft.Security/pricings/{plan}"
            parent = ctx.state.get(sub)
            if parent is not None and _on(props(parent).get("enforce")):
                why = (f"the subscription's plan {plan} is enforced on every resource under it (enforce True): a "
                       "resource cannot override it; change the subscription's plan instead")
        if why:
            raise ActionError(f"refused: {why} (Pricings_Update, 2024-01-01)", action=self.name, resource_id=target)

    def plan(self, ctx: PlanContext, params: EnablePlanParams) -> list[Change]:
        target = self.target(ctx, params)
        plan, sub = ids.parse(target).name, ids.parse(target).subscription_id
        machine = at_resource(target)
        if machine:
            self._refuse_at_resource(ctx, params, target)
        doc = ctx.state.get(target)
        if doc is None:
            how = (f"`az rest --method get --url https://management.azure.com{target}?api-version="
                   f"{self.api_version}`" if machine else
                   f"`az security pricing show --name {plan} --subscription {sub} > pricing-{plan}.json`")
            raise ActionError(f"Defender plan {plan} not in the resource state; save it with {how} (an ARM GET of "
                              f"{target})", action=self.name, resource_id=target)
        have = props(doc)
        if have.get("deprecated") is True:
            instead = ", ".join(str(r) for r in have.get("replacedBy") or []) or "another plan"
            raise ActionError(f"refused: Defender plan {plan} is deprecated; enable {instead} instead",
                              action=self.name, resource_id=target)
        after = json_copy(dict(doc))
        new = after.setdefault("properties", {})
        tier: list[str] = []   # what every definition checks
        sub_plan: list[str] = []   # the sub-plan and enforce (compliant_if sub_plan and all)
        extensions: list[str] = []   # the named extensions (compliant_if all)
        if _tier(doc) != params.tier:
            new["pricingTier"] = params.tier
            tier.append(f"pricingTier: {_tier(doc)} -> {params.tier}")
        if params.tier == "Free":
            for key in ("subPlan", "extensions", "enablementTime"):  # what a Free plan shows (the list example)
                new.pop(key, None)
        else:
            sub_plan = self._sub_plan_parts(params, have, new)
            extensions = self._extension_parts(params, new)
        checked = {"all": sub_plan + extensions, "sub_plan": sub_plan, "tier": []}
        own = machine and params.own_setting and _inherited(doc)
        if not tier and not checked[params.compliant_if] and not own:
            return []  # as the definition wants it
        parts = tier + sub_plan + extensions
        if machine and _inherited(doc):  # any write at a resource gives it its own setting
            new["inherited"], new["inheritedFrom"] = "False", None
            parts.append(f"the machine gets its own setting (it inherited {_tier(doc)} from "
                         f"{have.get('inheritedFrom') or 'the subscription'})")
        where = f"resource {label(_scope(target))}" if machine else f"subscription {sub}"
        if params.tier == "Standard":
            # the cost first: Slack clips a long note line, and this is what the approvers weigh
            parts.insert(0, f"COST: Defender plan {plan} is billed for what it covers in {where} from now on "
                            f"(prices: {PRICING_PAGE})")
            parts.append("can break: nothing stops working; agentless scanning and on-upload malware scanning read "
                         "the covered resources' data")
        else:
            parts.append(f"can break: Defender plan {plan} stops protecting {where}: no threat alerts or "
                         "vulnerability findings from it there (and no charge for it)")
        return [Change(action=self.name, resource_id=str(doc.get("id") or target), operation="update", before=doc,
                       after=after, note="; ".join(parts))]

    @staticmethod
    def _sub_plan_parts(params: EnablePlanParams, have: Mapping[str, Any], new: dict[str, Any]) -> list[str]:
        """Set the sub-plan and ``enforce`` of a Standard plan in ``new``; what changed."""
        parts: list[str] = []
        if params.sub_plan and str(have.get("subPlan") or "").lower() != params.sub_plan.lower():
            new["subPlan"] = params.sub_plan
            parts.append(f"subPlan: {have.get('subPlan') or '<not set>'} -> {params.sub_plan}")
        if params.enforce and str(have.get("enforce") or "False").lower() != params.enforce.lower():
            new["enforce"] = params.enforce
            parts.append(f"enforce: {have.get('enforce') or 'False'} -> {params.enforce}")
        return parts

    @staticmethod
    def _extension_parts(params: EnablePlanParams, new: dict[str, Any]) -> list[str]:
        """Set the named extensions of a Standard plan in ``new``; what changed."""
        parts: list[str] = []
        extensions = [e for e in new.get("extensions") or [] if isinstance(e, dict)]
        for want in params.extensions:
            ext = next((e for e in extensions if str(e.get("name", "")).lower() == want.name.lower()), None)
            # an extension the pricing does not list is written out, even off: a definition counts it by name
            # ("count … where name equals MdeDesignatedSubscription and isEnabled equals false … equals 1")
            unlisted = ext is None
            if ext is None:
                ext = {"name": want.name, "isEnabled": "False"}
                extensions.append(ext)
            was = _on(ext.get("isEnabled"))
            extra = dict(ext.get("additionalExtensionProperties") or {})
            # properties go with turning it on: an extension already on keeps its own (a cost cap set on purpose)
            wanted_extra = _with_properties(extra, want.properties) if want.enabled and not was else extra
            if was != want.enabled or wanted_extra != extra or unlisted:
                ext["isEnabled"] = "True" if want.enabled else "False"
                ext.pop("operationStatus", None)
                if wanted_extra:
                    ext["additionalExtensionProperties"] = wanted_extra
                shown = ", ".join(f"{k}={v}" for k, v in want.properties.items())
                state = "not listed" if unlisted else "on" if was else "off"
                parts.append(f"extension {want.name}: {state} -> {'on' if want.enabled else 'off'}"
                             + (f" ({shown})" if shown and want.enabled else ""))
                if want.enabled and want.name.lower() in EXTENSION_EFFECTS:
                    parts.append(f"with {want.name} on: {EXTENSION_EFFECTS[want.name.lower()]}")
        if extensions:
            new["extensions"] = extensions
        return parts

    # apply / verify / undo ----------------------------------------------------------------------------
    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body: a Standard plan carries its sub-plan and extensions (without their read-only
        ``operationStatus``); a Free plan only its tier (and ``enforce``). At a resource: the tier and, when
        Standard, the sub-plan (PutResourcePricingByNameVirtualMachines_example.json); enforce and extensions
        belong to the subscription."""
        have = props(doc)
        if at_resource(str(doc.get("id") or "")):
            keys = ("pricingTier", "subPlan") if _tier(doc) == "Standard" else ("pricingTier",)
            return {"properties": {k: json_copy(have[k]) for k in keys if have.get(k) is not None}}
        if _tier(doc) != "Standard":
            free: dict[str, Any] = {"pricingTier": _tier(doc)}
            if have.get("enforce") is not None:
                free["enforce"] = have["enforce"]
            return {"properties": free}
        out: dict[str, Any] = {k: json_copy(have[k]) for k in ("pricingTier", "subPlan", "enforce")
                               if have.get(k) is not None}
        exts = [{k: json_copy(e[k]) for k in EXTENSION_WRITABLE if e.get(k) is not None} for e in _extensions(doc)]
        if exts:
            out["extensions"] = exts
        return {"properties": out}

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        out = []
        if _tier(have) != _tier(want):
            out.append(f"pricingTier is {_tier(have)}, expected {_tier(want)}")
        if at_resource(str(want.get("id") or "")) and not _inherited(want) and _inherited(have):
            out.append(f"the resource still inherits from {props(have).get('inheritedFrom') or 'its subscription'}")
        if _tier(want) != "Standard":
            return out
        w_sub, h_sub = props(want).get("subPlan"), props(have).get("subPlan")
        if w_sub and str(w_sub).lower() != str(h_sub or "").lower():
            out.append(f"subPlan is {h_sub or '<not set>'}, expected {w_sub}")
        current = {str(e.get("name", "")).lower(): e for e in _extensions(have)}
        for ext in [] if at_resource(str(want.get("id") or "")) else _extensions(want):
            got = current.get(str(ext.get("name", "")).lower())
            if _on(ext.get("isEnabled")) != _on((got or {}).get("isEnabled")):
                out.append(f"extension {ext.get('name')} is {'on' if _on((got or {}).get('isEnabled')) else 'off'}, "
                           f"expected {'on' if _on(ext.get('isEnabled')) else 'off'}")
        return out

    def written(self, change: Change) -> str:
        return f": pricingTier {_tier(change.after or {})}"

    def weighs(self, change: Change) -> str:
        """A plan put at Standard costs money (two approvers at least, whatever the playbook's quorum)."""
        if _tier(change.after or {}) == "Standard" and _tier(change.before or {}) != "Standard":
            return f"costs money: Defender plan {ids.parse(change.resource_id).name} is billed ({PRICING_PAGE})"
        return ""

    def verify(self, state: StateReader, change: Change) -> str | None:
        """A resource's own pricing deleted (an undo): the resource inherits again (its GET always answers)."""
        if change.operation == "delete" and at_resource(change.resource_id):
            current = state.get(change.resource_id)
            if current is None or _inherited(current):
                return None
            return f"{self.noun} {ids.parse(change.resource_id).name} still has the resource's own setting"
        return super().verify(state, change)

    def undo(self, change: Change) -> Change:
        """Back to the previous tier; a resource that inherited its pricing inherits again (Pricings_Delete of
        its own setting), rather than keeping a copy of what it inherited."""
        before = change.before or {}
        if change.operation == "update" and at_resource(change.resource_id) and _inherited(before) \
                and change.after is not None:
            return Change(action=self.name, resource_id=change.resource_id, operation="delete",
                          before=without_etag(change.after), after=None,
                          note=f"undo: delete the resource's own {self.noun} {ids.parse(change.resource_id).name}: "
                               f"it inherits {_tier(before)} from "
                               f"{props(before).get('inheritedFrom') or 'its subscription'} again")
        return super().undo(change)

    def undo_note(self, change: Change) -> str:
        before = change.before or {}
        return f"pricingTier {_tier(before)} again" + (
            f", subPlan {props(before).get('subPlan')}" if props(before).get("subPlan") else "")


COSMOS_PRICING_PAGE = "https://azure.microsoft.com/pricing/details/defender-for-cloud/"


@register
class EnableCosmosThreatProtection(PropertyAction[NoParams]):
    """Turn on Microsoft Defender for Azure Cosmos DB for one account (its Advanced Threat Protection setting).

    What "Deploy Advanced Threat Protection for Cosmos DB Accounts" (b5f04e03-92a3-4b09-9410-2cc5e5047656, Azure/
    azure-policy built-in-policies/policyDefinitions/Cosmos DB/AdvancedThreatProtection_DINE.json) checks and deploys:
    ``Microsoft.Security/advancedThreatProtectionSettings/isEnabled`` true on the account's ``current`` setting. The
    finding names the account; the plan reads and writes ``{account}/providers/Microsoft.Security/
    advancedThreatProtectionSettings/current`` (a PUT: the API has no PATCH). It costs money: the account is billed
    as Defender for Azure Cosmos DB covers it (the note links the pricing page). Undo puts ``isEnabled`` false again.
    """

    name = "cosmos.enable-threat-protection"
    profile = THREAT_PROTECTION_SETTING
    resource_types = (COSMOS_ACCOUNT.type, THREAT_PROTECTION_SETTING.type)
    finding_only = (COSMOS_ACCOUNT.type,)
    method = "PUT"
    settings = (Setting("properties.isEnabled", True, absent=False),)
    breaks = ("nothing stops working: Defender reads the account's control- and data-plane telemetry and raises "
              "alerts; no request is blocked")
    example = Example("Defender threat protection on each Cosmos DB account holding grounding data.",
                      why="Deploy Advanced Threat Protection for Cosmos DB Accounts",
                      policies=("b5f04e03-92a3-4b09-9410-2cc5e5047656",), risk="high",
                      approval="{mode: slack, approvers: [security-leads, platform-owners], quorum: 2, "
                               "expires_after: 1d}")

    def target_id(self, ctx: PlanContext) -> str:
        rid = ids.parse(ctx.finding.resource_id)
        if ids.type_key(rid.type) == ids.type_key(THREAT_PROTECTION_SETTING.type):
            return ctx.finding.resource_id
        if ids.type_key(rid.type) != ids.type_key(COSMOS_ACCOUNT.type):
            raise ActionError(f"expected a {COSMOS_ACCOUNT.type}, got {rid.type or 'no resource type'}",
                              action=self.name, resource_id=ctx.finding.resource_id)
        return f"{rid.id}/providers/Microsoft.Security/advancedThreatProtectionSettings/current"

    def describe(self, doc: Mapping[str, Any], changed: Mapping[str, Any]) -> list[str]:
        account = label(_scope(str(doc.get("id") or "")))
        # the cost first: Slack clips a long note line, and this is what the approvers weigh
        return [f"COST: Defender for Azure Cosmos DB is billed for account {account} from now on (prices: "
                f"{COSMOS_PRICING_PAGE})", *super().describe(doc, changed)]

    def weighs(self, change: Change) -> str:
        """Turning it on costs money (two approvers at least, whatever the playbook's quorum)."""
        if get_path(change.after, "properties.isEnabled") is True and \
                get_path(change.before, "properties.isEnabled") is not True:
            return f"costs money: Defender for Azure Cosmos DB is billed for the account ({COSMOS_PRICING_PAGE})"
        return ""
