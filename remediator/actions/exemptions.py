"""Azure Policy exemptions: no exemption without an end, none wider than the playbook allows.

``policy.limit-exemption`` looks at one ``Microsoft.Authorization/policyExemptions`` resource (at a
management group, subscription, resource group or resource scope) and finds what is wrong with it:

``no_expiry``
    no ``expiresOn``: the exemption hides non-compliance forever;
``expires_too_late``
    ``expiresOn`` later than ``max_days`` after now;
``expired``
    ``expiresOn`` already past: Azure Policy ignores it, the resource stays as clutter that a later
    edit of its date would silently bring back;
``scope``
    attached at a scope kind the playbook does not allow (``allowed_scopes``: e.g. only
    ``resourceGroup`` and ``resource``, so a subscription- or management-group-wide exemption is too wide);
``category``
    ``exemptionCategory`` the playbook does not allow (``allowed_categories``: e.g. only ``Mitigated``,
    so a ``Waiver``, "we accept the risk", is too wide);
``never_exempt``
    it exempts a policy definition the playbook lists in ``never_exempt``, resolved through the
    exemption's ``policyAssignmentId`` → the assignment's ``policyDefinitionId`` (for an initiative,
    → the set definition's members, narrowed by the exemption's ``policyDefinitionReferenceIds``).
    The assignment (and set definition) must be in the state; when they are not, the plan says so in a
    warning and checks the rest.

Each condition has a remedy parameter: ``set-expiry`` (an ``update`` putting ``expiresOn`` at now +
``max_days``, or keeping an earlier future expiry), ``delete``, or (for ``expired``) ``keep``; a
``never_exempt`` hit is always a delete. When several conditions hold, a delete wins. Deleting an
exemption puts the resources it covered back under the policy at once (deny effects start denying,
remediation tasks start): that is high risk, and the shipped playbook asks for two approvers.

**Now** (for "past", "too late" and the new expiry) is deterministic, so a re-plan before apply gives
the same fingerprint: the planner's injectable clock (``PlanContext.now``) when set, else the finding's
event time (``additional_data.eventtime`` of an Event Grid or Activity Log write), else the start of
the current UTC day. The note says which one was used.

Writes, verify and undo are the child-resource base's (``remediator.actions.children``): a DELETE, or a
PUT of the exemption's writable properties, by id at the ``POLICY_EXEMPTION`` profile's API version
(``2022-07-01-preview``; azure-mgmt-resource 26 no longer ships a ``PolicyClient``). Undo puts the
previous ``expiresOn`` back (or removes it), or re-creates a deleted exemption from the plan's ``before``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Params, PlanContext, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction
from remediator.actions.children import props as _props
from remediator.actions.profiles import POLICY_EXEMPTION
from remediator.azure.reader import register_api_version
from remediator.checks.params import policy_refs
from remediator.errors import ActionError, StateError
from remediator.words import plural

EXEMPTION_TYPE = POLICY_EXEMPTION.type
ASSIGNMENT_TYPE = "Microsoft.Authorization/policyAssignments"
SET_TYPE = "Microsoft.Authorization/policySetDefinitions"
EXEMPTION_API = POLICY_EXEMPTION.api_version
# policy assignments and set definitions: the stable 2023-04-01 API (read only, to resolve definitions)
POLICY_API = "2023-04-01"
register_api_version(EXEMPTION_TYPE, EXEMPTION_API)
register_api_version(ASSIGNMENT_TYPE, POLICY_API)
register_api_version(SET_TYPE, POLICY_API)

# PolicyExemptionProperties in the 2022-07-01-preview spec (systemData and the envelope are not written)
WRITABLE = ("policyAssignmentId", "policyDefinitionReferenceIds", "exemptionCategory", "expiresOn", "displayName",
            "description", "metadata", "resourceSelectors", "assignmentScopeValidation")
Scope = Literal["managementGroup", "subscription", "resourceGroup", "resource"]
Category = Literal["Waiver", "Mitigated"]
SCOPES: tuple[Scope, ...] = ("managementGroup", "subscription", "resourceGroup", "resource")
CATEGORIES: tuple[Category, ...] = ("Waiver", "Mitigated")

class LimitExemptionParams(Params):
    max_days: int = Field(default=90, ge=1, le=3650)
    """The longest an exemption may run from now: a missing or later expiry becomes now + max_days."""
    allowed_scopes: list[Scope] = Field(default_factory=lambda: list(SCOPES), min_length=1)
    """Scope kinds an exemption may be attached at: managementGroup, subscription, resourceGroup, resource. E.g.
    [resourceGroup, resource] makes subscription-wide exemptions too wide."""
    allowed_categories: list[Category] = Field(default_factory=lambda: list(CATEGORIES), min_length=1)
    """Exemption categories allowed: Waiver (risk accepted) and/or Mitigated (handled elsewhere)."""
    never_exempt: list[str] = Field(default_factory=no_items)
    """Policy definitions (GUIDs of built-ins or full definition ids) that must never be exempted: an exemption of one
    of them is deleted."""
    no_expiry: Literal["set-expiry", "delete"] = "set-expiry"
    """Remedy for an exemption without expiresOn."""
    expires_too_late: Literal["set-expiry", "delete"] = "set-expiry"
    """Remedy for an expiry later than now + max_days."""
    expired: Literal["delete", "keep"] = "delete"
    """Remedy for an exemption past its expiry (keep: leave it as it is)."""
    too_wide: Literal["delete", "set-expiry"] = "delete"
    """Remedy for a scope or category the playbook does not allow."""

    _valid_refs = field_validator("never_exempt")(policy_refs)


def _name(ref: str) -> str:
    return ref.strip().rstrip("/").rsplit("/", 1)[-1].lower()


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 date-time (ARM's ``2024-01-01T00:00:00Z``, 7-digit fractions) as aware UTC, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if m:  # ARM writes 7 fraction digits; datetime takes at most 6
        text = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def arm_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scope_of(exemption_id: str) -> tuple[str, Scope]:
    """The scope an exemption is attached to, and its kind."""
    low = exemption_id.lower()
    cut = low.rfind("/providers/microsoft.authorization/policyexemptions/")
    scope = exemption_id[:cut] if cut >= 0 else ""
    sc = scope.lower().strip("/")
    parts = sc.split("/") if sc else []
    if parts[:3] == ["providers", "microsoft.management", "managementgroups"] and len(parts) == 4:
        return scope, "managementGroup"
    if len(parts) == 2 and parts[0] == "subscriptions":
        return scope, "subscription"
    if len(parts) == 4 and parts[0] == "subscriptions" and parts[2] == "resourcegroups":
        return scope, "resourceGroup"
    return scope, "resource"


def _with_expiry(doc: Mapping[str, Any], expires: str | None) -> dict[str, Any]:
    out = json_copy(dict(doc))
    props = out.setdefault("properties", {})
    if expires is None:
        props.pop("expiresOn", None)
    else:
        props["expiresOn"] = expires
    return out


@register
class LimitExemption(ChildResourceAction[LimitExemptionParams]):
    """Give Azure Policy exemptions an end date, and delete those wider than the playbook allows.

    Exemptions have no Defender recommendation and no built-in Azure Policy; the finding is the ARM
    write itself (Event Grid ``ResourceWriteSuccess`` or an Activity Log alert on
    ``Microsoft.Authorization/policyExemptions/write``).

    ```yaml
    name: policy-limit-exemptions
    description: No policy exemption without an expiry within 90 days; no waivers of the guardrails.
    match:
      operations: [Microsoft.Authorization/policyExemptions/write]
      resource_types: [Microsoft.Authorization/policyExemptions]
    risk: high
    approval: {mode: slack, approvers: [platform-owners, security-oncall], quorum: 2, expires_after: 1d}
    steps:
      - action: policy.limit-exemption
        params:
          max_days: 90
          allowed_scopes: [resourceGroup, resource]
          never_exempt: [4fa4b6c0-31ca-4c0d-b10d-24b96f62a751]
    ```
    """

    name = "policy.limit-exemption"
    summary = ("Put an expiry on policy exemptions (at most max_days away); delete expired, too wide "
               "or never-exempt ones")
    profile = POLICY_EXEMPTION
    writable = WRITABLE

    # plan ------------------------------------------------------------------------------------------
    @staticmethod
    def clock(ctx: PlanContext) -> tuple[datetime, str]:
        """(now, where it came from): the planner's clock, the finding's event time, or today 00:00 UTC."""
        if ctx.now is not None:
            now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)
            return now.astimezone(UTC), "the planner's clock"
        event = parse_time(ctx.finding.additional_data.get("eventtime"))
        if event is not None:
            return event, "the finding's event time"
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today, "the start of today (UTC; the finding has no time)"

    def plan(self, ctx: PlanContext, params: LimitExemptionParams) -> list[Change]:
        rid = ctx.finding.resource_id
        if ids.type_key(ids.resource_type(rid)) != ids.type_key(EXEMPTION_TYPE):
            raise ActionError(f"expected a policy exemption, got {ids.resource_type(rid) or 'a scope'}",
                              action=self.name, resource_id=rid)
        doc = ctx.state.get(rid)
        if doc is None:
            raise ActionError("policy exemption not found in the resource state (deleted since, or not saved: "
                              f"`az resource show --ids {rid}`)", action=self.name, resource_id=rid)
        exemption_id = str(doc.get("id") or rid)
        props = _props(doc)
        now, source = self.clock(ctx)
        limit = now + timedelta(days=params.max_days)
        expires = parse_time(props.get("expiresOn"))
        if props.get("expiresOn") and expires is None:
            raise ActionError(f"expiresOn {props.get('expiresOn')!r} is not a date-time", action=self.name,
                              resource_id=exemption_id)
        _, scope_kind = scope_of(exemption_id)
        category = str(props.get("exemptionCategory") or "")

        found: list[tuple[str, str]] = []  # (remedy, reason)
        if expires is None:
            found.append((params.no_expiry, "no expiry"))
        elif expires <= now:
            if params.expired == "delete":
                found.append(("delete", f"expired on {arm_time(expires)}"))
        elif expires > limit:
            found.append((params.expires_too_late, f"expires {arm_time(expires)}, more than "
                                                   f"{plural(params.max_days, 'day')} away"))
        if scope_kind not in params.allowed_scopes:
            found.append((params.too_wide, f"{scope_kind} scope (allowed: {', '.join(params.allowed_scopes)})"))
        if category and category not in params.allowed_categories:
            found.append((params.too_wide, f"category {category} (allowed: {', '.join(params.allowed_categories)})"))
        hit = self._never_exempt(ctx, params, exemption_id, props)
        if hit:
            found.append(("delete", f"exempts {hit}, listed in never_exempt"))
        if not found:
            return []
        reasons = "; ".join(r for _, r in found)
        name = ids.parse(exemption_id).name
        if any(remedy == "delete" for remedy, _ in found) or (expires is not None and expires <= now):
            return [Change(action=self.name, resource_id=exemption_id, operation="delete", before=doc, after=None,
                           note=f"DELETE exemption {name} ({reasons}): the resources it covered are evaluated "
                                f"against {props.get('policyAssignmentId') or 'its assignment'} again at once "
                                "(deny effects deny, remediation starts)")]
        new = limit if expires is None or expires > limit else expires
        was = arm_time(expires) if expires else "none"
        return [Change(action=self.name, resource_id=exemption_id, operation="update", before=doc,
                       after=_with_expiry(doc, arm_time(new)),
                       note=f"exemption {name} ({reasons}): expiresOn {was} -> {arm_time(new)} ("
                            f"{plural(params.max_days, 'day')} from {arm_time(now)}, {source}); after that the policy "
                            "applies to its resources again")]

    def _never_exempt(self, ctx: PlanContext, params: LimitExemptionParams, exemption_id: str,
                      props: Mapping[str, Any]) -> str | None:
        """The first ``never_exempt`` definition this exemption covers, or None (with warnings for what the
        state could not tell)."""
        if not params.never_exempt:
            return None
        def listed(definition: str) -> bool:
            return definitions_listed(params.never_exempt, definition)

        assignment_id = str(props.get("policyAssignmentId") or "")
        unchecked = "its policy definition was not checked against never_exempt"
        if not assignment_id:
            ctx.warn(f"exemption {exemption_id} names no policyAssignmentId: {unchecked}")
            return None
        assignment = self._read(ctx, assignment_id, "policy assignment", unchecked)
        if assignment is None:
            return None
        definition = str(_props(assignment).get("policyDefinitionId") or "")
        if not definition:
            ctx.warn(f"policy assignment {assignment_id} names no policyDefinitionId: {unchecked}")
            return None
        if ids.type_key(ids.resource_type(definition)) != ids.type_key(SET_TYPE):
            return definition if listed(definition) else None
        members = self._read(ctx, definition, "policy set definition",
                             "which of its policies the exemption covers was not checked against never_exempt")
        if members is None:
            return None
        refs = {str(r).lower() for r in props.get("policyDefinitionReferenceIds") or []}
        for member in _props(members).get("policyDefinitions") or []:
            if not isinstance(member, Mapping):
                continue
            ref = str(member.get("policyDefinitionReferenceId") or "").lower()
            member_id = str(member.get("policyDefinitionId") or "")
            if (not refs or ref in refs) and member_id and listed(member_id):
                return f"{member_id} (in {definition})"
        return None

    @staticmethod
    def _read(ctx: PlanContext, resource_id: str, what: str, unchecked: str) -> dict[str, Any] | None:
        try:
            doc = ctx.state.get(resource_id)
        except StateError as e:
            ctx.warn(f"{what} {resource_id} could not be read ({e}): {unchecked}")
            return None
        if doc is None:
            ctx.missing(resource_id, what, unchecked)
        return doc

    # what the child-resource base writes and compares ------------------------------------------------
    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        wrong: list[str] = []
        if parse_time(_props(want).get("expiresOn")) != parse_time(_props(have).get("expiresOn")):
            wrong.append(f"expiresOn is {_props(have).get('expiresOn')!r}, planned {_props(want).get('expiresOn')!r}")
        for key in ("policyAssignmentId", "exemptionCategory"):
            if str(_props(want).get(key) or "").lower() != str(_props(have).get(key) or "").lower():
                wrong.append(f"{key} is {_props(have).get(key)!r}, planned {_props(want).get(key)!r}")
        return wrong

    def written(self, change: Change) -> str:
        return f": expiresOn {_props(change.after).get('expiresOn') or 'none'}"

    def undo_note(self, change: Change) -> str:
        previous = _props(change.before).get("expiresOn")
        if change.operation == "delete":
            return f"expiresOn {previous or 'none'}"
        return f"expiresOn back to {previous or 'none (no expiry)'}" if change.operation == "update" else ""


def definitions_listed(refs: Sequence[str], definition: str) -> bool:
    """True when ``definition`` (an id) is one of ``refs`` (GUIDs/names, or full ids)."""
    for ref in refs:
        if ref.startswith("/"):
            if ids.same(ref, definition):
                return True
        elif _name(ref) == _name(definition):
            return True
    return False
