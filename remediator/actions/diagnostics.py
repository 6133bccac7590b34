"""Resource logs where the evidence lives: a diagnostic setting on any resource.

``monitor.enable-diagnostic-logs`` makes a resource send its resource logs (the ``audit`` category
group by default; ``allLogs`` or named categories as parameters) to the deployment's Log Analytics
workspace (setting ``diagnostics_workspace_id``) and/or storage account (``diagnostics_storage_account_id``),
through one ``Microsoft.Insights/diagnosticSettings`` extension resource: ``{resource}/providers/
Microsoft.Insights/diagnosticSettings/{name}``. It works on any resource type that has resource logs; the
playbook's ``match.resource_types`` says which. Without either setting the plan refuses, naming the setting.

The plan lists the resource's diagnostic settings and:

* plans nothing when one already sends every wanted group or category (``allLogs`` covers ``audit``
  and every category) to every configured destination;
* repairs (``update``) the setting that already uses the configured workspace (or storage account)
  as its destination: ARM refuses a second setting that sends a category to the same sink
  ("Data sinks can't be reused in different settings on the same category for the same resource"),
  so that one is the one to fix; else the setting of the playbook's ``name``; adding the wanted
  entries, enabling them, and setting the configured destinations, keeping everything else;
* else creates the setting ``name`` (refused when the resource already has five settings, Azure
  Monitor's limit per resource: Microsoft Learn, "Diagnostic settings in Azure Monitor").

The shape follows the Azure Policy definitions that deploy the same setting ("Enable logging by category
group for … to Log Analytics", Azure/azure-policy Monitoring/DS_LA_*_DINE.json: ``logs`` entries of
``categoryGroup`` with ``enabled``, ``workspaceId``, ``metrics: []``) and the REST API at
2021-05-01-preview (createOrUpdateDiagnosticSetting.json). Writes are a ``PUT`` (create or repair) or a
``DELETE`` (undo of a create) of the setting by id (``remediator.actions.children``), under Monitoring
Contributor granted at the resource (a role at a resource covers its extension resources).

Permissions on the destination: ARM checks the writer's right to use the sink as a *linked scope* of the
write: ``Microsoft.OperationalInsights/workspaces/sharedKeys/action`` on the workspace
(MicrosoftDocs/azure-docs articles/azure-monitor/logs/manage-access.md: with workspaces/read and
sharedKeys/action a user "can only enumerate the workspace and use it as a destination for diagnostic
settings"; ARM's refusal is ``LinkedAuthorizationFailed``) and ``Microsoft.Storage/storageAccounts/
listKeys/action`` on a storage account (MicrosoftDocs/azure-docs issue #80159). Monitoring Contributor holds
the first; Reader and Data Access (c12c1c16-33a1-487b-954d-41c89c60f349: storageAccounts/read and listKeys)
is the narrowest built-in role with the second. :attr:`EnableDiagnosticLogs.destination_roles` names them and
:meth:`EnableDiagnosticLogs.grants` asks for each, at the destination, besides Monitoring Contributor at the
resource (each granted, audited and released by the applier). A repaired setting that also sends to an Event
Hub or a partner keeps that destination; ARM may check it too, and remediator grants nothing there: the plan
warns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from remediator import ids
from remediator._json import json_copy
from remediator.actions.base import BuiltinRole, Example, GrantNeed, Params, PlanContext, label, no_items, register
from remediator.actions.change import Change
from remediator.actions.children import ChildResourceAction, props
from remediator.actions.profiles import DIAGNOSTIC_SETTING, MONITORING_CONTRIBUTOR
from remediator.azure.reader import register_extension_list, register_read_version
from remediator.errors import ActionError

DIAGNOSTIC_TYPE = DIAGNOSTIC_SETTING.type
register_extension_list(DIAGNOSTIC_TYPE, DIAGNOSTIC_SETTING.api_version)
WORKSPACE_SETTING = "diagnostics_workspace_id"
STORAGE_SETTING = "diagnostics_storage_account_id"
MAX_SETTINGS = 5  # per resource: Microsoft Learn, "Diagnostic settings in Azure Monitor"
READER_AND_DATA_ACCESS = BuiltinRole("Reader and Data Access", "c12c1c16-33a1-487b-954d-41c89c60f349")
# what ARM checks on each destination as a linked scope of the write (the module docstring)
LINKED_OPERATIONS = {WORKSPACE_SETTING: "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
                     STORAGE_SETTING: "Microsoft.Storage/storageAccounts/listKeys/action"}
# DiagnosticSettings properties a PUT carries (the rest of the document is the envelope)
WRITABLE = ("storageAccountId", "workspaceId", "eventHubAuthorizationRuleId", "eventHubName", "marketplacePartnerId",
            "serviceBusRuleId", "logAnalyticsDestinationType", "logs", "metrics")

# The resources the shipped playbook attaches settings to, read (never written) with a generic GET at a
# stable API version of each provider's REST spec (Azure/azure-rest-api-specs <provider>/stable/<version>).
for _type, _version in (("Microsoft.Search/searchServices", "2023-11-01"),
                        ("Microsoft.MachineLearningServices/registries", "2024-10-01"),
                        ("Microsoft.DocumentDB/databaseAccounts", "2024-11-15"),
                        ("Microsoft.DataFactory/factories", "2018-06-01"),
                        ("Microsoft.Synapse/workspaces", "2021-06-01"),
                        ("Microsoft.Web/sites", "2023-12-01"),
                        ("Microsoft.ContainerService/managedClusters", "2024-09-01"),
                        ("Microsoft.Storage/storageAccounts/blobServices", "2023-05-01")):
    register_read_version(_type, _version)


CategoryGroup = Literal["audit", "allLogs"]


def _audit() -> list[CategoryGroup]:
    return ["audit"]


class DiagnosticLogsParams(Params):
    name: str = Field(default="remediator-audit", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """The diagnostic setting's name when one is created (or repaired by name)."""
    category_groups: list[CategoryGroup] = Field(default_factory=_audit)
    """Category groups to send: audit (who did what: the evidence) and/or allLogs (everything; more ingestion cost)."""
    categories: list[str] = Field(default_factory=no_items)
    """Individual log categories to send as well (AuditEvent, RequestResponse …), for types without category groups."""
    dedicated_tables: bool = False
    """Resource-specific tables in the workspace (logAnalyticsDestinationType Dedicated) instead of AzureDiagnostics."""

    @field_validator("categories")
    @classmethod
    def _category_names(cls, value: list[str]) -> list[str]:
        for c in value:
            if not c or not all(ch.isalnum() or ch in "-_" for ch in c):
                raise ValueError(f"{c!r} is not a log category name (letters, digits, - and _)")
        return value

    @model_validator(mode="after")
    def _something(self) -> DiagnosticLogsParams:
        if not self.category_groups and not self.categories:
            raise ValueError("name at least one of category_groups or categories")
        return self


def _logs(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    value = props(doc).get("logs")
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _enabled(entry: Mapping[str, Any]) -> bool:
    value = entry.get("enabled")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    if entry.get("categoryGroup"):
        return "categoryGroup", str(entry["categoryGroup"]).lower()
    return "category", str(entry.get("category") or "").lower()


def _sends(doc: Mapping[str, Any], kind: str, name: str) -> bool:
    """Whether the setting sends the group or category: its own entry, or ``allLogs``, enabled."""
    for e in _logs(doc):
        if not _enabled(e):
            continue
        if _entry_key(e) == (kind, name.lower()) or _entry_key(e) == ("categoryGroup", "alllogs"):
            return True
    return False


def _destination(doc: Mapping[str, Any], prop: str) -> str:
    return str(props(doc).get(prop) or "")


@register
class EnableDiagnosticLogs(ChildResourceAction[DiagnosticLogsParams]):
    """Send a resource's audit logs (or named categories) to the deployment's Log Analytics workspace
    and/or storage account through one diagnostic setting, created or repaired."""

    name = "monitor.enable-diagnostic-logs"
    summary = "Create or repair a diagnostic setting sending audit logs to the configured workspace"
    profile = DIAGNOSTIC_SETTING
    resource_types = ("*",)
    writable = WRITABLE
    id_hint = "{resource}/providers/Microsoft.Insights/diagnosticSettings/{name}"
    destination_roles: tuple[tuple[str, BuiltinRole], ...] = (
        (WORKSPACE_SETTING, MONITORING_CONTRIBUTOR), (STORAGE_SETTING, READER_AND_DATA_ACCESS))
    """The role each destination needs (a linked scope of the write): see the module docstring."""
    extra_roles = (READER_AND_DATA_ACCESS,)
    example = Example(
        "Send the audit logs of AI services accounts to the central Log Analytics workspace.",
        why="Diagnostic logs in Azure AI services resources should be enabled",
        policies=("1b4d1c4e-934c-4703-944c-27c82c06bebb",),
        resource_types=("Microsoft.CognitiveServices/accounts",), risk="low", approval="auto",
        params="{category_groups: [audit]}")

    # plan --------------------------------------------------------------------------------------------
    def destinations(self, ctx: PlanContext) -> dict[str, str]:
        """``workspaceId``/``storageAccountId`` → the configured id; refused, naming the setting, if neither is."""
        workspace, storage = ctx.settings.get(WORKSPACE_SETTING), ctx.settings.get(STORAGE_SETTING)
        if not workspace and not storage:
            raise ActionError(f"refused: resource logs need a destination: set {WORKSPACE_SETTING} (a Log Analytics "
                              f"workspace id; settings file key {WORKSPACE_SETTING} or REMEDIATOR_"
                              f"{WORKSPACE_SETTING.upper()}) or {STORAGE_SETTING}", action=self.name,
                              resource_id=ctx.finding.resource_id)
        out = {}
        if workspace:
            out["workspaceId"] = str(workspace)
        if storage:
            out["storageAccountId"] = str(storage)
        return out

    def plan(self, ctx: PlanContext, params: DiagnosticLogsParams) -> list[Change]:
        target = ids.canonical(ctx.finding.resource_id)
        rid = ids.parse(target)
        if not rid.subscription_id or not rid.namespace or ids.type_key(rid.type) == ids.type_key(DIAGNOSTIC_TYPE):
            raise ActionError("expected a resource (/subscriptions/…/providers/<type>/<name>) to attach a diagnostic "
                              "setting to", action=self.name, resource_id=target)
        dest = self.destinations(ctx)
        doc = ctx.state.get(target)
        if doc is None:
            raise ActionError("resource not found", action=self.name, resource_id=target)
        target = str(doc.get("id") or target)
        wanted = [("categoryGroup", g) for g in params.category_groups] + [("category", c) for c in params.categories]
        prefix = ids.key(target) + "/providers/microsoft.insights/diagnosticsettings/"
        existing = [d for d in ctx.state.list(DIAGNOSTIC_TYPE, target)
                    if ids.key(str(d.get("id", ""))).startswith(prefix)
                    and "/" not in ids.key(str(d.get("id", "")))[len(prefix):]]
        for setting in existing:
            if all(ids.same(_destination(setting, p), v) for p, v in dest.items()) and \
                    all(_sends(setting, k, n) for k, n in wanted):
                return []  # already sent where the deployment keeps its logs
        what = " and ".join(f"{n} ({'group' if k == 'categoryGroup' else 'category'})" for k, n in wanted)
        where = "; ".join(f"{'Log Analytics workspace' if p == 'workspaceId' else 'storage account'} "
                          f"{ids.parse(v).name} ({v})" for p, v in dest.items())
        cost = "can break: nothing; the workspace bills the ingested logs (Log Analytics pricing)"
        linked = "ARM checks the destination as a linked scope of the write: granted " + ", ".join(
            f"{role.name} on the {'workspace' if setting == WORKSPACE_SETTING else 'storage account'}"
            for setting, role in self.destination_roles if ctx.settings.get(setting)) + " for it"
        candidate = next((s for s in existing if any(ids.same(_destination(s, p), v) for p, v in dest.items())), None) \
            or next((s for s in existing if str(s.get("name", "")).lower() == params.name.lower()), None)
        if candidate is not None:
            after = self._repaired(candidate, dest, wanted, params)
            others = [p for p in ("eventHubAuthorizationRuleId", "marketplacePartnerId", "serviceBusRuleId")
                      if _destination(candidate, p)]
            if others:
                ctx.warn(f"diagnostic setting {candidate.get('name')} also sends to {', '.join(others)}, kept as it "
                         "is: ARM may check the right to use it when the setting is written, and remediator grants "
                         "nothing there")
            note = (f"repair diagnostic setting {candidate.get('name')} on {label(target)}: send {what} to {where}; "
                    f"keeps its other logs and destinations; {cost}; {linked}")
            return [Change(action=self.name, resource_id=str(candidate.get("id")), operation="update",
                           before=candidate, after=after, note=note)]
        if len(existing) >= MAX_SETTINGS:
            names = ", ".join(str(s.get("name")) for s in existing)
            raise ActionError(f"refused: {label(target)} already has {len(existing)} diagnostic settings ({names}), "
                              f"Azure Monitor's limit per resource; point one of them at {where} instead",
                              action=self.name, resource_id=target)
        setting_id = f"{target}/providers/Microsoft.Insights/diagnosticSettings/{params.name}"
        body: dict[str, Any] = {**dest, "logs": [{k: n, "enabled": True} for k, n in wanted], "metrics": []}
        if params.dedicated_tables and "workspaceId" in dest:
            body["logAnalyticsDestinationType"] = "Dedicated"
        after = {"id": setting_id, "name": params.name, "type": DIAGNOSTIC_TYPE, "properties": body}
        note = f"create diagnostic setting {params.name} on {label(target)}: send {what} to {where}; {cost}; {linked}"
        return [Change(action=self.name, resource_id=setting_id, operation="create", before=None, after=after,
                       note=note)]

    @staticmethod
    def _repaired(setting: Mapping[str, Any], dest: Mapping[str, str], wanted: Sequence[tuple[str, str]],
                  params: DiagnosticLogsParams) -> dict[str, Any]:
        after = json_copy(dict(setting))
        new = after.setdefault("properties", {})
        new.update(dest)
        if params.dedicated_tables and "workspaceId" in dest:
            new["logAnalyticsDestinationType"] = "Dedicated"
        logs = [e for e in new.get("logs") or [] if isinstance(e, dict)]
        for kind, name in wanted:
            entry = next((e for e in logs if _entry_key(e) == (kind, name.lower())), None)
            if entry is None:
                logs.append({kind: name, "enabled": True})
            else:
                entry["enabled"] = True
        new["logs"] = logs
        new.setdefault("metrics", [])
        return after

    # grants ------------------------------------------------------------------------------------------
    def grants(self, change: Change) -> list[GrantNeed]:
        """Monitoring Contributor at the resource (the setting's write), then, for a PUT, the right to use each
        configured destination at that destination: ARM checks it as a linked scope of the write."""
        needs = [GrantNeed(self.grant_scope(change), self.role, "Microsoft.Insights/diagnosticSettings/write")]
        if change.operation == "delete" or change.after is None:
            return needs
        for setting, role in self.destination_roles:
            prop = "workspaceId" if setting == WORKSPACE_SETTING else "storageAccountId"
            sink = _destination(change.after, prop)
            if sink:
                needs.append(GrantNeed(ids.canonical(sink), role, f"{LINKED_OPERATIONS[setting]} (a linked scope)"))
        return needs

    # verify ------------------------------------------------------------------------------------------
    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        out = [f"{p} is {_destination(have, p) or '<not set>'}, expected {_destination(want, p)}"
               for p in ("workspaceId", "storageAccountId")
               if _destination(want, p) and not ids.same(_destination(have, p), _destination(want, p))]
        for e in _logs(want):
            kind, name = _entry_key(e)
            if _enabled(e) and not _sends(have, kind, name):
                out.append(f"{'category group' if kind == 'categoryGroup' else 'category'} {name} is not sent")
        return out

    def written(self, change: Change) -> str:
        sent = [str(e.get("categoryGroup") or e.get("category")) for e in _logs(change.after or {}) if _enabled(e)]
        return f": logs {', '.join(sent)}"
