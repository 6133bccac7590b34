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

It costs money: the note says so and links the plan's pricing page (no figure is guessed: it depends
on the plan, the sub-plan, the region and the resources covered). Writes are a ``PUT`` of the pricing
(Pricings_Update, 2024-01-01: 200/201, not long-running) under a grant of Security Admin at the
subscription (``remediator.actions.change.grant_scope``). Undo puts the previous tier back, with its
sub-plan and extensions when it was Standard.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Example, Params, PlanContext, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import DEFENDER_PLAN
from remediator.azure.reader import register_api_version
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
EXTENSION_WRITABLE = ("name", "isEnabled", "additionalExtensionProperties")


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
    VirtualMachines, CloudPosture …); needed when the finding names the subscription."""
    sub_plan: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    """The plan's sub-plan (DefenderForStorageV2, PerTransaction, P1, P2 …); unset: what the plan has or defaults to."""
    extensions: list[ExtensionParams] = Field(default_factory=no_items)
    """Extensions that must be on (or off); the others are kept as they are."""

    @field_validator("plan")
    @classmethod
    def _known_plan(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = next((p for p in PLANS if p.lower() == value.strip().lower()), None)
        if match is None:
            close = difflib.get_close_matches(value, PLANS, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown Defender plan {value!r}; {hint}known plans: {', '.join(PLANS)}")
        return match

    @field_validator("extensions")
    @classmethod
    def _unique(cls, value: list[ExtensionParams]) -> list[ExtensionParams]:
        names = [e.name.lower() for e in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"extension {twice[0]!r} is listed twice")
        return value


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
    return str(props(doc).get("pricingTier") or "Free")


@register
class EnablePlan(ChildResourceAction[EnablePlanParams]):
    """Put a Microsoft Defender for Cloud plan of the subscription at the Standard tier, with its extensions."""

    name = "defender.enable-plan"
    summary = "Turn a Defender for Cloud plan on (pricingTier Standard, sub-plan and extensions); it costs money"
    profile = DEFENDER_PLAN
    resource_types = ("subscription", PRICING_TYPE)
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
        if not rid.subscription_id or rid.namespace or rid.resource_group:
            raise ActionError("expected a subscription or a Microsoft.Security/pricings resource", action=self.name,
                              resource_id=ctx.finding.resource_id)
        if not params.plan:
            raise ActionError("the finding names the subscription: the step needs params.plan (the Defender plan: "
                              f"{', '.join(PLANS)})", action=self.name, resource_id=ctx.finding.resource_id)
        return f"/subscriptions/{rid.subscription_id}/providers/Microsoft.Security/pricings/{params.plan}"

    def plan(self, ctx: PlanContext, params: EnablePlanParams) -> list[Change]:
        target = self.target(ctx, params)
        doc = ctx.state.get(target)
        plan, sub = ids.parse(target).name, ids.parse(target).subscription_id
        if doc is None:
            raise ActionError(f"Defender plan {plan} not in the resource state; save it with `az security pricing show "
                              f"--name {plan} --subscription {sub} > pricing-{plan}.json` (an ARM GET of {target})",
                              action=self.name, resource_id=target)
        have = props(doc)
        if have.get("deprecated") is True:
            instead = ", ".join(str(r) for r in have.get("replacedBy") or []) or "another plan"
            raise ActionError(f"refused: Defender plan {plan} is deprecated; enable {instead} instead",
                              action=self.name, resource_id=target)
        after = json_copy(dict(doc))
        new = after.setdefault("properties", {})
        parts: list[str] = []
        if _tier(doc) != "Standard":
            new["pricingTier"] = "Standard"
            parts.append(f"pricingTier: {_tier(doc)} -> Standard")
        if params.sub_plan and str(have.get("subPlan") or "").lower() != params.sub_plan.lower():
            new["subPlan"] = params.sub_plan
            parts.append(f"subPlan: {have.get('subPlan') or '<not set>'} -> {params.sub_plan}")
        extensions = _extensions(after)
        for want in params.extensions:
            ext = next((e for e in extensions if str(e.get("name", "")).lower() == want.name.lower()), None)
            if ext is None:
                ext = {"name": want.name, "isEnabled": "False"}
                extensions.append(ext)
            was = _on(ext.get("isEnabled"))
            extra = dict(ext.get("additionalExtensionProperties") or {})
            # properties go with turning it on: an extension already on keeps its own (a cost cap set on purpose)
            wanted_extra = _with_properties(extra, want.properties) if want.enabled and not was else extra
            if was != want.enabled or wanted_extra != extra:
                ext["isEnabled"] = "True" if want.enabled else "False"
                ext.pop("operationStatus", None)
                if wanted_extra:
                    ext["additionalExtensionProperties"] = wanted_extra
                shown = ", ".join(f"{k}={v}" for k, v in want.properties.items())
                parts.append(f"extension {want.name}: {'on' if was else 'off'} -> {'on' if want.enabled else 'off'}"
                             + (f" ({shown})" if shown and want.enabled else ""))
        if not parts:
            return []  # already on, as the playbook wants it
        if extensions:
            new["extensions"] = extensions
        # the cost first: Slack clips a long note line, and this is what the approvers weigh
        parts.insert(0, f"COST: Defender plan {plan} is billed for what it covers in subscription {sub} from now "
                        f"on (prices: {PRICING_PAGE})")
        parts.append("can break: nothing stops working; agentless scanning and on-upload malware scanning read the "
                     "covered resources' data")
        return [Change(action=self.name, resource_id=str(doc.get("id") or target), operation="update", before=doc,
                       after=after, note="; ".join(parts))]

    # apply / verify / undo ----------------------------------------------------------------------------
    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The PUT body: a Standard plan carries its sub-plan and extensions (without their read-only
        ``operationStatus``); a Free plan only its tier (and ``enforce``)."""
        have = props(doc)
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
        if _tier(want) != "Standard":
            return out
        w_sub, h_sub = props(want).get("subPlan"), props(have).get("subPlan")
        if w_sub and str(w_sub).lower() != str(h_sub or "").lower():
            out.append(f"subPlan is {h_sub or '<not set>'}, expected {w_sub}")
        current = {str(e.get("name", "")).lower(): e for e in _extensions(have)}
        for ext in _extensions(want):
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

    def undo_note(self, change: Change) -> str:
        before = change.before or {}
        return f"pricingTier {_tier(before)} again" + (
            f", subPlan {props(before).get('subPlan')}" if props(before).get("subPlan") else "")
