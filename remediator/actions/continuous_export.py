"""Defender's continuous export to remediator's Event Hub: checked per subscription, and restored.

remediator sees what Defender for Cloud sends it. What feeds the Event Hub is a **continuous export**: a
``Microsoft.Security/automations`` resource of the subscription (in one of its resource groups) with an
``EventHub`` action. Its shape (Azure/azure-rest-api-specs ``specification/security/resource-manager/
Microsoft.Security/preview/2023-12-01-preview/automations.json``, the newest version: the API has no stable
one; examples ``Automations/GetAutomationsSubscription_example.json``, ``PutAutomationAllAssessments_example.json``,
``PutDisableAutomation_example.json``):

* ``properties.isEnabled``: false stops every export of the automation;
* ``properties.sources[]``: ``{eventSource, ruleSets}``; ``eventSource`` is one of ``EVENT_SOURCES``; rule sets
  are or-ed, the rules of one set and-ed;
* ``properties.actions[]``: ``{actionType: EventHub, eventHubResourceId, connectionString, isTrustedServiceEnabled}``
  (``sasPolicyName`` is read-only and the connection string is never returned);
* ``properties.scopes[]``: ``{description, scopePath}``: the subscription or resource groups in it.

The export carries alerts (``Alerts``), recommendations (``Assessments``, and the weekly ``AssessmentsSnapshot``)
and security findings (``SubAssessments``). It does **not** carry Azure Policy states: the nearest source,
``RegulatoryComplianceAssessment``, is compliance-standard control results, which remediator ignores (they are no
finding); policy states arrive from Event Grid (docs/deploy.md §6). So what must be exported is a setting,
``export_sources`` (default ``Alerts``, ``Assessments``, ``SubAssessments``), and where to:
``export_event_hub_id`` (the hub's id).

``export_status`` says, for one subscription, whether an enabled automation exports those sources to that hub
(``ExportStatus``: present, enabled, destination, sources); ``remediator doctor`` prints it next to the Defender
plans, and the daily reconcile (``remediator.lifecycle.engine.Engine.scan_and_reconcile``) turns a subscription
whose export is missing, disabled, incomplete or pointing elsewhere into a finding (``export_finding``): kind
``policy``, type ``EXPORT_POLICY``, the built-in definition "Deploy export to Event Hub for Microsoft Defender for
Cloud data" (cdfcce10-4578-4ecd-9703-530938e4abcb, DeployIfNotExists on the subscription, existence condition
on ``Microsoft.Security/automations``), so a deployment that assigns that definition gets the same finding
from Azure Policy's own events, and the same playbook answers both.

``defender.restore-export`` restores it from the settings: an automation that already sends to the hub is put
back (enabled, the missing sources added, the hub's action kept); without one, a new automation
(``AUTOMATION_NAME``) is created in ``export_resource_group`` of the subscription (or the hub's own resource
group in the hub's subscription), sending as a trusted service (``isTrustedServiceEnabled``: the deployment's
hub takes no SAS keys; Defender's resource provider sends with its own identity, which needs Azure Event Hubs
Data Sender on the hub: docs/deploy.md §5). An automation that sends to another hub is left as it is: it may
feed another tool (a SIEM), and re-pointing it would blind that one. The write is a PUT of the whole
automation (Automations_CreateOrUpdate: 200/201, not long-running). Undo puts the previous document back, or
deletes the automation it created.

Role: ``Microsoft.Security/automations/write`` is held by Security Admin (security.md: ``Microsoft.Security/*``
but no role assignments; the narrowest built-in with the write: Security Reader has only reads, and the
other roles with it are Contributor and Owner). The grant is at the automation when it exists, else at its
resource group (``remediator.actions.change.grant_scope``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import Example, Params, PlanContext, Profile, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import SECURITY_ADMIN
from remediator.azure.reader import register_api_version, register_extension_list
from remediator.errors import ActionError
from remediator.findings.model import Finding, Severity

AUTOMATION_TYPE = "Microsoft.Security/automations"
API_VERSION = "2023-12-01-preview"
AUTOMATION_NAME = "remediator-export"
# Built-in policy "Deploy export to Event Hub for Microsoft Defender for Cloud data" (Security Center category).
EXPORT_POLICY = "cdfcce10-4578-4ecd-9703-530938e4abcb"
EXPORT_POLICY_ID = f"/providers/Microsoft.Authorization/policyDefinitions/{EXPORT_POLICY}"
EVENT_SOURCES: tuple[str, ...] = (
    "Assessments", "AssessmentsSnapshot", "SubAssessments", "SubAssessmentsSnapshot", "Alerts", "SecureScores",
    "SecureScoresSnapshot", "SecureScoreControls", "SecureScoreControlsSnapshot", "RegulatoryComplianceAssessment",
    "RegulatoryComplianceAssessmentSnapshot", "AttackPaths", "AttackPathsSnapshot")
DEFAULT_SOURCES: tuple[str, ...] = ("Alerts", "Assessments", "SubAssessments")
# Recommendations: only unhealthy ones (docs/deploy.md §5 and infra/main.bicep's export; healthy ones only withdraw)
UNHEALTHY_RULES: dict[str, Any] = {"rules": [{"propertyJPath": "properties.status.code", "propertyType": "String",
                                              "expectedValue": "Unhealthy", "operator": "Equals"}]}
FILTERED_SOURCES = frozenset({"assessments", "assessmentssnapshot"})
AUTOMATION = Profile(type=AUTOMATION_TYPE, api_version=API_VERSION, role=SECURITY_ADMIN, noun="continuous export",
                     permissions=(f"{AUTOMATION_TYPE}/read", f"{AUTOMATION_TYPE}/write", f"{AUTOMATION_TYPE}/delete"))
WRITABLE = ("description", "isEnabled", "scopes", "sources", "actions")
register_api_version(AUTOMATION_TYPE, API_VERSION)
register_extension_list(AUTOMATION_TYPE, API_VERSION)  # GET /subscriptions/{id}/providers/…/automations (list)

Problem = str  # "missing" | "disabled" | "elsewhere" | "scope" | "sources" | "" (none)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportStatus:
    """One subscription's continuous export to the hub, as ``export_status`` found it."""

    subscription: str
    hub: str
    automation_id: str | None = None  # the automation that sends (or should send) to the hub
    present: bool = False  # an automation sends to the hub
    enabled: bool = False
    destination: str | None = None  # where the automation named sends (the hub, or elsewhere)
    sources: tuple[str, ...] = ()  # what it exports
    missing_sources: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()  # Event Hubs other automations send to
    whole: bool = True  # its scopes cover the whole subscription
    problem: Problem = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    def line(self) -> str:
        """One line for people: what was found and what is wrong."""
        if self.problem == "missing":
            return "no continuous export to an Event Hub: Defender sends remediator nothing from this subscription"
        if self.problem == "elsewhere":
            return (f"no continuous export to {ids.parse(self.hub).name}; the export sends to "
                    f"{', '.join(self.elsewhere)} instead: remediator receives nothing from this subscription")
        name = ids.parse(self.automation_id or "").name
        shown = f"export {name} to {ids.parse(self.hub).name}: " + ("enabled" if self.enabled else "DISABLED") + \
            f", sources {', '.join(self.sources) or 'none'}"
        if self.problem == "disabled":
            return shown + ": Defender sends remediator nothing from this subscription"
        if self.problem == "scope":
            return shown + "; it covers only part of the subscription (its scopes are resource groups)"
        if self.problem == "sources":
            return shown + f"; not exported: {', '.join(self.missing_sources)}"
        return shown


def _event_hub_actions(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    actions = props(doc).get("actions")
    return [a for a in actions if isinstance(a, Mapping) and str(a.get("actionType", "")).lower() == "eventhub"] \
        if isinstance(actions, list) else []


def _sources(doc: Mapping[str, Any]) -> list[str]:
    value = props(doc).get("sources")
    return [str(s.get("eventSource")) for s in value if isinstance(s, Mapping) and s.get("eventSource")] \
        if isinstance(value, list) else []


def _enabled(doc: Mapping[str, Any]) -> bool:
    value = props(doc).get("isEnabled")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _hub_label(hub_id: str) -> str:
    """``namespace/hub`` (or the namespace of a SAS export): another hub's name alone may be this one's."""
    names = ids.parse(hub_id).names
    return "/".join(names[-2:]) if names else "?"


def sends_to(action: Mapping[str, Any], hub: str) -> bool:
    """The action sends to ``hub``: its ``eventHubResourceId`` is the hub, or the hub's namespace (a SAS export
    names the namespace and takes the hub from its connection string, which ARM never returns)."""
    target = ids.canonical(str(action.get("eventHubResourceId") or "")).lower()
    hub_id = ids.canonical(hub).lower()
    return bool(target) and (target == hub_id or target == hub_id.rsplit("/eventhubs/", 1)[0])


def _covers(scopes: Any, subscription: str) -> bool:
    """The automation's scopes cover the whole subscription (no scopes: the subscription it lives in)."""
    if not isinstance(scopes, list) or not scopes:
        return True
    return any(isinstance(s, Mapping) and ids.same(str(s.get("scopePath") or ""), f"/subscriptions/{subscription}")
               for s in scopes)


def export_status(subscription: str, automations: Sequence[Mapping[str, Any]], *, hub: str,
                  sources: Sequence[str] = DEFAULT_SOURCES) -> ExportStatus:
    """Whether an enabled automation of ``subscription`` exports ``sources`` to ``hub`` (see the module docstring).

    Of several automations sending to the hub the best is reported: enabled first, then the most of ``sources``."""
    sub = subscription.lower()
    wanted = list(sources)
    to_hub = [a for a in automations if any(sends_to(x, hub) for x in _event_hub_actions(a))]
    if not to_hub:
        others = sorted({_hub_label(str(x.get("eventHubResourceId") or "")) for a in automations
                         for x in _event_hub_actions(a)})
        return ExportStatus(subscription=sub, hub=hub, elsewhere=tuple(others),
                            problem="elsewhere" if others else "missing")

    def fit(a: Mapping[str, Any]) -> tuple[bool, bool, int]:
        have = {s.lower() for s in _sources(a)}
        return _enabled(a), _covers(props(a).get("scopes"), sub), sum(1 for s in wanted if s.lower() in have)

    best = max(to_hub, key=fit)
    have = _sources(best)
    missing = tuple(s for s in wanted if s.lower() not in {h.lower() for h in have})
    enabled, whole = _enabled(best), _covers(props(best).get("scopes"), sub)
    problem = "disabled" if not enabled else "scope" if not whole else "sources" if missing else ""
    return ExportStatus(subscription=sub, hub=hub, automation_id=str(best.get("id") or ""), present=True,
                        enabled=enabled, destination=hub, sources=tuple(have), missing_sources=missing,
                        whole=whole, problem=problem)


def export_finding(status: ExportStatus, *, at: datetime | None = None) -> Finding:
    """The finding of a subscription whose export is not right: one per subscription (a stable id: raised once
    while its request is open, whatever is wrong with the export), as Azure Policy would report it."""
    sub = status.subscription
    titles = {"missing": "missing", "disabled": "disabled", "elsewhere": "sends elsewhere",
              "scope": "incomplete", "sources": "incomplete"}
    return Finding(
        id=f"continuous-export:{sub}", kind="policy", type=EXPORT_POLICY,
        title=f"Defender continuous export to remediator's Event Hub is {titles.get(status.problem, 'wrong')}",
        severity=Severity.HIGH, status="NonCompliant", resource_id=f"/subscriptions/{sub}", subscription_id=sub,
        resource_group=None, resource_type="", source="export-check", description=status.line(),
        policy_definition_id=EXPORT_POLICY_ID,
        raw={"subscription": sub, "problem": status.problem, "automation": status.automation_id,
             "checked_at": at.isoformat() if at else None})


def automations_of(state: Any, subscription: str) -> list[dict[str, Any]]:
    """The subscription's automations (``StateReader.list`` at the subscription)."""
    docs: list[dict[str, Any]] = state.list(AUTOMATION_TYPE, f"/subscriptions/{subscription}")
    return docs


class RestoreExportParams(Params):
    """No parameters: the hub, the sources and the resource group are the deployment's settings
    (``export_event_hub_id``, ``export_sources``, ``export_resource_group``)."""


def _source_doc(source: str) -> dict[str, Any]:
    return {"eventSource": source, "ruleSets": [json_copy(UNHEALTHY_RULES)] if source.lower() in FILTERED_SOURCES
            else []}


@register
class RestoreExport(ChildResourceAction[RestoreExportParams]):
    """Restore Defender's continuous export of the subscription to remediator's Event Hub, from the settings."""

    name = "defender.restore-export"
    summary = "Put Defender's continuous export to remediator's Event Hub back (enabled, every source), from settings"
    profile = AUTOMATION
    resource_types = ("subscription", AUTOMATION_TYPE)
    writable = WRITABLE
    id_hint = "/subscriptions/…/resourceGroups/…/providers/Microsoft.Security/automations/<name>"
    example = Example(
        "Put Defender's continuous export to remediator's Event Hub back.",
        why="Deploy export to Event Hub for Microsoft Defender for Cloud data (and remediator's own daily check)",
        policies=(EXPORT_POLICY,), resource_types=("subscription",), risk="medium",
        approval="{mode: slack, approvers: [security-oncall, security-leads], expires_after: 1d}")

    def _settings(self, ctx: PlanContext) -> tuple[str, tuple[str, ...]]:
        hub = str(ctx.settings.get("export_event_hub_id") or "")
        if not hub:
            raise ActionError("refused: set export_event_hub_id (REMEDIATOR_EXPORT_EVENT_HUB_ID: the Event Hub "
                              "Defender exports to, /subscriptions/…/providers/Microsoft.EventHub/namespaces/<ns>/"
                              "eventhubs/<hub>)", action=self.name, resource_id=ctx.finding.resource_id)
        sources = tuple(ctx.settings.get("export_sources") or DEFAULT_SOURCES)
        return hub, sources

    def _subscription(self, ctx: PlanContext) -> str:
        rid = ids.parse(ctx.finding.resource_id)
        if not rid.subscription_id or (rid.namespace and ids.type_key(rid.type) != ids.type_key(AUTOMATION_TYPE)) \
                or (rid.resource_group and not rid.namespace):
            raise ActionError("expected a subscription or a Microsoft.Security/automations resource", action=self.name,
                              resource_id=ctx.finding.resource_id)
        return rid.subscription_id.lower()

    def plan(self, ctx: PlanContext, params: RestoreExportParams) -> list[Change]:
        hub, sources = self._settings(ctx)
        sub = self._subscription(ctx)
        automations = automations_of(ctx.state, sub)
        status = export_status(sub, automations, hub=hub, sources=sources)
        if status.ok:
            return []
        if status.present and status.automation_id:
            doc = next(a for a in automations if ids.same(str(a.get("id") or ""), status.automation_id))
            return [self._repair(doc, status, sources)]
        return [self._create(ctx, sub, hub, sources, status)]

    def _repair(self, doc: Mapping[str, Any], status: ExportStatus, sources: Sequence[str]) -> Change:
        after = json_copy(dict(doc))
        new = after.setdefault("properties", {})
        parts = []
        if not status.enabled:
            new["isEnabled"] = True
            parts.append("isEnabled: false -> true")
        if not status.whole:
            new["scopes"] = [{"description": f"subscription {status.subscription}",
                              "scopePath": f"/subscriptions/{status.subscription}"}]
            parts.append("scopes: its resource groups -> the whole subscription")
        if status.missing_sources:
            new["sources"] = [*(s for s in new.get("sources") or [] if isinstance(s, Mapping)),
                              *(_source_doc(s) for s in status.missing_sources)]
            parts.append(f"sources: + {', '.join(status.missing_sources)}")
        parts.append(f"it sends to {ids.parse(status.hub).name}; its other sources, rule sets and actions are kept")
        return Change(action=self.name, resource_id=str(doc.get("id")), operation="update", before=dict(doc),
                      after=after, note="; ".join(parts))

    def _create(self, ctx: PlanContext, sub: str, hub: str, sources: Sequence[str], status: ExportStatus) -> Change:
        hub_rid = ids.parse(hub)
        group = str(ctx.settings.get("export_resource_group") or "")
        if not group and (hub_rid.subscription_id or "").lower() == sub:
            group = hub_rid.resource_group or ""
        if not group:
            raise ActionError(f"refused: subscription {sub} has no export to the hub, and no resource group to create "
                              "one in: set export_resource_group (REMEDIATOR_EXPORT_RESOURCE_GROUP, a resource "
                              "group name that exists in each scanned subscription)", action=self.name,
                              resource_id=ctx.finding.resource_id)
        rg_id = f"/subscriptions/{sub}/resourceGroups/{group}"
        rg = ctx.state.get(rg_id)
        if rg is None or not rg.get("location"):
            raise ActionError(f"refused: resource group {group} not found in subscription {sub} (the new export goes "
                              "there: create it, or set export_resource_group to one that exists)",
                              action=self.name, resource_id=rg_id)
        rid = f"{rg_id}/providers/{AUTOMATION_TYPE}/{AUTOMATION_NAME}"
        if ctx.state.get(rid) is not None:
            raise ActionError(f"refused: {AUTOMATION_NAME} exists in {group} but does not send to "
                              f"{hub_rid.name}; look at it before remediator replaces it", action=self.name,
                              resource_id=rid)
        after = {"id": rid, "name": AUTOMATION_NAME, "type": AUTOMATION_TYPE, "location": rg["location"],
                 "properties": {
                     "description": "Defender for Cloud findings to remediator (restored by defender.restore-export)",
                     "isEnabled": True,
                     "scopes": [{"description": f"subscription {sub}", "scopePath": f"/subscriptions/{sub}"}],
                     "sources": [_source_doc(s) for s in sources],
                     "actions": [{"actionType": "EventHub", "eventHubResourceId": hub,
                                  "isTrustedServiceEnabled": True}]}}
        why = {"missing": "the subscription has no continuous export to an Event Hub",
               "elsewhere": f"its exports send to {', '.join(status.elsewhere)} (left as they are: they may feed "
                            "another tool)"}.get(status.problem, status.line())
        note = (f"create continuous export {AUTOMATION_NAME} in {group}: {', '.join(sources)} to {hub_rid.name} as a "
                f"trusted service (Defender's resource provider needs Azure Event Hubs Data Sender on the hub); {why}")
        return Change(action=self.name, resource_id=rid, operation="create", before=None, after=after, note=note)

    def body(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        out = super().body(doc)
        out["location"] = doc.get("location")
        if doc.get("etag"):  # the spec's examples send it with an update ("must be supplied for update")
            out["etag"] = doc["etag"]
        if doc.get("tags"):
            out["tags"] = json_copy(doc["tags"])
        # read-only parts of the hub actions (sasPolicyName) are not sent back
        for action in out["properties"].get("actions") or []:
            if isinstance(action, dict):
                action.pop("sasPolicyName", None)
        return out

    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        out = []
        if _enabled(want) != _enabled(have):
            out.append(f"isEnabled is {str(_enabled(have)).lower()}, expected {str(_enabled(want)).lower()}")
        wanted, had = {s.lower() for s in _sources(want)}, {h.lower() for h in _sources(have)}
        missing = [s for s in _sources(want) if s.lower() not in had]
        if missing:
            out.append(f"does not export {', '.join(missing)}")
        extra = [s for s in _sources(have) if s.lower() not in wanted]
        if extra:
            out.append(f"exports {', '.join(extra)} too")
        if _covers(props(want).get("scopes"), ids.parse(str(want.get("id") or "")).subscription_id or "") and \
                not _covers(props(have).get("scopes"), ids.parse(str(have.get("id") or "")).subscription_id or ""):
            out.append("covers only part of the subscription")
        hubs = [str(a.get("eventHubResourceId") or "") for a in _event_hub_actions(want)]
        if hubs and not any(sends_to(a, h) for h in hubs for a in _event_hub_actions(have)):
            out.append(f"does not send to {ids.parse(hubs[0]).name}")
        return out

    def written(self, change: Change) -> str:
        return f": {', '.join(_sources(change.after or {}))} to the Event Hub"
