"""Resource logs where the evidence lives: a diagnostic setting on any resource.

``monitor.enable-diagnostic-logs`` makes a resource send its resource logs (the ``audit`` category
group by default; ``allLogs``, named categories and metric categories as parameters) to the deployment's
Log Analytics workspace (setting ``diagnostics_workspace_id``), storage account
(``diagnostics_storage_account_id``) and/or Event Hub (``diagnostics_event_hub_authorization_rule_id`` with
``diagnostics_event_hub_name``), through one ``Microsoft.Insights/diagnosticSettings`` extension resource:
``{resource}/providers/Microsoft.Insights/diagnosticSettings/{name}``. It works on any resource type that has
resource logs; the playbook's ``match.resource_types`` says which.

Where the logs go is the playbook's ``destinations``: empty (the default) sends to each of the workspace and
the storage account that is configured, refusing when neither is; a list (``[workspace]``, ``[storage]``,
``[event_hub]`` …) sends to exactly those and refuses, naming the setting, when one is not configured. A
definition whose sink is a storage account (Azure Policy's ``DS_ST_*``) is therefore never "fixed" by a
workspace, nor an Event Hub one (``DS_EH_*``) by either.

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
is the narrowest built-in role with the second. An Event Hub destination is checked the same way:
``Microsoft.EventHub/namespaces/authorizationRules/listkeys/action`` on the rule (azsec.azurewebsites.net,
"Notes with cross-subscription Event Hub", 2018: the principal writing the setting needs it, with the
namespace's reads, where the hub is; the rule itself needs Manage, Send and Listen: Microsoft Learn, "Stream
Azure resource logs to Azure Event Hubs");
Azure Event Hubs Data Owner (f526a384-b230-433a-b45c-95f59c4a2dec, actions ``Microsoft.EventHub/*``) is the
narrowest built-in role found that holds it (Data Sender and Data Receiver hold only ``eventhubs/read`` and
``consumergroups/read``: Microsoft Learn, "Azure built-in roles for Analytics"), and the role Azure Policy's own
``DS_EH_*`` definitions assign; it is granted at the rule's namespace, time-bound like the others.
:attr:`EnableDiagnosticLogs.destination_roles` names them and
:meth:`EnableDiagnosticLogs.grants` asks for each, at the destination, besides Monitoring Contributor at the
resource (each granted, audited and released by the applier). A repaired setting that also sends to a partner
or a Service Bus keeps that destination; ARM may check it too, and remediator grants nothing there: the plan
warns.

Metrics: ``metrics: [AllMetrics]`` adds a metric category, as the definitions that check
``metrics.enabled`` deploy it (Storage/*ServicesLogsToWorkspace_DINE.json, AccountStorageLogsToWorkspace_DINE.json,
the Front Door and Application Gateway resource-log definitions).
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
from remediator.checks import params as checks
from remediator.errors import ActionError

DIAGNOSTIC_TYPE = DIAGNOSTIC_SETTING.type
register_extension_list(DIAGNOSTIC_TYPE, DIAGNOSTIC_SETTING.api_version)
WORKSPACE_SETTING = "diagnostics_workspace_id"
STORAGE_SETTING = "diagnostics_storage_account_id"
EVENT_HUB_RULE_SETTING = "diagnostics_event_hub_authorization_rule_id"
EVENT_HUB_NAME_SETTING = "diagnostics_event_hub_name"
MAX_SETTINGS = 5  # per resource: Microsoft Learn, "Diagnostic settings in Azure Monitor"
READER_AND_DATA_ACCESS = BuiltinRole("Reader and Data Access", "c12c1c16-33a1-487b-954d-41c89c60f349")
EVENT_HUBS_DATA_OWNER = BuiltinRole("Azure Event Hubs Data Owner", "f526a384-b230-433a-b45c-95f59c4a2dec")
# what ARM checks on each destination as a linked scope of the write (the module docstring)
LINKED_OPERATIONS = {WORKSPACE_SETTING: "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
                     STORAGE_SETTING: "Microsoft.Storage/storageAccounts/listKeys/action",
                     EVENT_HUB_RULE_SETTING: "Microsoft.EventHub/namespaces/authorizationRules/listkeys/action"}
# the setting → the diagnostic setting's property it fills
SINK_PROPERTY = {WORKSPACE_SETTING: "workspaceId", STORAGE_SETTING: "storageAccountId",
                 EVENT_HUB_RULE_SETTING: "eventHubAuthorizationRuleId"}
SINK_NAME = {"workspaceId": "Log Analytics workspace", "storageAccountId": "storage account",
             "eventHubAuthorizationRuleId": "Event Hubs namespace (rule)"}
# DiagnosticSettings properties a PUT carries (the rest of the document is the envelope)
WRITABLE = ("storageAccountId", "workspaceId", "eventHubAuthorizationRuleId", "eventHubName", "marketplacePartnerId",
            "serviceBusRuleId", "logAnalyticsDestinationType", "logs", "metrics")

# The resources the shipped playbooks attach settings to, read (never written) with a generic GET at a
# stable API version of each provider's REST spec (Azure/azure-rest-api-specs specification/<service>/
# resource-manager/<namespace>/stable/<version>/<file>.json, named after each).
for _type, _version in (("Microsoft.Search/searchServices", "2023-11-01"),
                        ("Microsoft.MachineLearningServices/registries", "2024-10-01"),
                        ("Microsoft.DocumentDB/databaseAccounts", "2024-11-15"),
                        ("Microsoft.DataFactory/factories", "2018-06-01"),
                        ("Microsoft.Synapse/workspaces", "2021-06-01"),
                        ("Microsoft.Web/sites", "2023-12-01"),
                        ("Microsoft.ContainerService/managedClusters", "2024-09-01"),
                        ("Microsoft.Storage/storageAccounts/blobServices", "2023-05-01"),
                        ("Microsoft.Storage/storageAccounts/fileServices", "2023-05-01"),   # storage: file.json
                        ("Microsoft.Storage/storageAccounts/queueServices", "2023-05-01"),  # queue.json
                        ("Microsoft.Storage/storageAccounts/tableServices", "2023-05-01"),  # table.json
                        ("Microsoft.Web/sites/slots", "2023-12-01"),                        # web: WebApps.json
                        ("Microsoft.Databricks/workspaces", "2024-05-01"),                  # databricks.json
                        ("Microsoft.KeyVault/managedHSMs", "2024-11-01"),                   # keyvault: managedHsm.json
                        ("Microsoft.Cdn/profiles", "2024-02-01"),                           # cdn: cdn.json
                        ("Microsoft.Cdn/profiles/endpoints", "2024-02-01"),                 # cdn.json
                        ("Microsoft.Network/frontDoors", "2021-06-01"),                     # frontdoor: frontdoor.json
                        ("Microsoft.Network/applicationGateways", "2024-05-01"),            # applicationGateway.json
                        ("Microsoft.Network/azureFirewalls", "2024-05-01"),                 # azureFirewall.json
                        ("Microsoft.Network/publicIPAddresses", "2024-05-01"),              # publicIpAddress.json
                        ("Microsoft.Network/networkSecurityGroups", "2024-05-01"),          # networkSecurityGroup.json
                        ("Microsoft.Network/virtualNetworks", "2024-05-01"),                # virtualNetwork.json
                        ("Microsoft.App/managedEnvironments", "2024-03-01"),                # ManagedEnvironments.json
                        ("Microsoft.DocumentDB/cassandraClusters", "2024-11-15"),           # managedCassandra.json
                        ("Microsoft.DocumentDB/mongoClusters", "2024-07-01"),               # mongocluster (TypeSpec)
                        ("Microsoft.Synapse/workspaces/bigDataPools", "2021-06-01"),        # synapse: bigDataPool.json
                        ("Microsoft.Synapse/workspaces/kustoPools", "2021-06-01"),          # kustoPool.json
                        ("Microsoft.Synapse/workspaces/sqlPools", "2021-06-01")):           # sqlPool.json
    register_read_version(_type, _version)


CategoryGroup = Literal["audit", "allLogs"]
Destination = Literal["workspace", "storage", "event_hub"]
DESTINATION_SETTINGS: dict[str, tuple[str, ...]] = {
    "workspace": (WORKSPACE_SETTING,), "storage": (STORAGE_SETTING,),
    "event_hub": (EVENT_HUB_RULE_SETTING, EVENT_HUB_NAME_SETTING)}


def _audit() -> list[CategoryGroup]:
    return ["audit"]


class DiagnosticLogsParams(Params):
    name: str = Field(default="remediator-audit", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """The diagnostic setting's name when one is created (or repaired by name)."""
    category_groups: list[CategoryGroup] = Field(default_factory=_audit)
    """Category groups to send: audit (who did what: the evidence) and/or allLogs (everything; more ingestion cost)."""
    categories: list[str] = Field(default_factory=no_items)
    """Individual log categories to send as well (AuditEvent, RequestResponse …), for types without category groups."""
    metrics: list[str] = Field(default_factory=no_items)
    """Metric categories to send as well (AllMetrics), for definitions that check metrics.enabled."""
    destinations: list[Destination] = Field(default_factory=no_items)
    """Where to send: workspace, storage and/or event_hub, each required; empty = each of workspace/storage set."""
    dedicated_tables: bool = False
    """Resource-specific tables in the workspace (logAnalyticsDestinationType Dedicated) instead of AzureDiagnostics."""

    _category_names = field_validator("categories", "metrics")(checks.log_category_names)
    _something = model_validator(mode="after")(checks.some_log_category)


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


def _sends_metric(doc: Mapping[str, Any], name: str) -> bool:
    """Whether the setting sends the metric category: its own entry, or ``AllMetrics``, enabled."""
    value = props(doc).get("metrics")
    entries = [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
    return any(_enabled(e) and str(e.get("category") or "").lower() in (name.lower(), "allmetrics") for e in entries)


def _destination(doc: Mapping[str, Any], prop: str) -> str:
    return str(props(doc).get(prop) or "")


def event_hub_namespace(rule_id: str) -> str:
    """The Event Hubs namespace of an authorization rule id (a namespace's rule, or an event hub's in it)."""
    parts = ids.canonical(rule_id).split("/")
    for i in range(1, len(parts) - 1):
        if parts[i].lower() == "namespaces" and parts[i - 1].lower() == "microsoft.eventhub":
            return "/".join(parts[:i + 2])
    return ids.canonical(rule_id)


@register
class EnableDiagnosticLogs(ChildResourceAction[DiagnosticLogsParams]):
    """Send a resource's audit logs (or named categories) to the deployment's Log Analytics workspace,
    storage account and/or Event Hub through one diagnostic setting, created or repaired."""

    name = "monitor.enable-diagnostic-logs"
    summary = "Create or repair a diagnostic setting sending audit logs to the configured workspace"
    profile = DIAGNOSTIC_SETTING
    resource_types = ("*",)
    writable = WRITABLE
    id_hint = "{resource}/providers/Microsoft.Insights/diagnosticSettings/{name}"
    destination_roles: tuple[tuple[str, BuiltinRole], ...] = (
        (WORKSPACE_SETTING, MONITORING_CONTRIBUTOR), (STORAGE_SETTING, READER_AND_DATA_ACCESS),
        (EVENT_HUB_RULE_SETTING, EVENT_HUBS_DATA_OWNER))
    """The role each destination needs (a linked scope of the write): see the module docstring."""
    extra_roles = (READER_AND_DATA_ACCESS, EVENT_HUBS_DATA_OWNER)
    example = Example(
        "Send the audit logs of AI services accounts to the central Log Analytics workspace.",
        why="Diagnostic logs in Azure AI services resources should be enabled",
        policies=("1b4d1c4e-934c-4703-944c-27c82c06bebb",),
        resource_types=("Microsoft.CognitiveServices/accounts",), risk="low", approval="auto",
        params="{category_groups: [audit]}")

    # plan --------------------------------------------------------------------------------------------
    def destinations(self, ctx: PlanContext, params: DiagnosticLogsParams | None = None) -> dict[str, str]:
        """The setting's destination properties (``workspaceId``, ``storageAccountId``,
        ``eventHubAuthorizationRuleId`` + ``eventHubName``) from the deployment's settings: those the playbook
        names (each required), else each of the workspace and storage account that is set (one required).
        Refused, naming the missing setting, otherwise."""
        named = list(params.destinations) if params is not None else []
        out: dict[str, str] = {}
        if not named:
            workspace, storage = ctx.settings.get(WORKSPACE_SETTING), ctx.settings.get(STORAGE_SETTING)
            if not workspace and not storage:
                raise ActionError(f"refused: resource logs need a destination: set {WORKSPACE_SETTING} (a Log "
                                  f"Analytics workspace id; settings file key {WORKSPACE_SETTING} or REMEDIATOR_"
                                  f"{WORKSPACE_SETTING.upper()}) or {STORAGE_SETTING}", action=self.name,
                                  resource_id=ctx.finding.resource_id)
            if workspace:
                out["workspaceId"] = str(workspace)
            if storage:
                out["storageAccountId"] = str(storage)
            return out
        for destination in dict.fromkeys(named):
            settings = DESTINATION_SETTINGS[destination]
            missing = [s for s in settings if not ctx.settings.get(s)]
            if missing:
                what = " and ".join(f"{s} (settings file key {s} or REMEDIATOR_{s.upper()})" for s in missing)
                raise ActionError(f"refused: this playbook sends resource logs to the deployment's "
                                  f"{destination.replace('_', ' ')}, and {what} is not set; another destination "
                                  "does not satisfy its definitions", action=self.name,
                                  resource_id=ctx.finding.resource_id)
            out[SINK_PROPERTY[settings[0]]] = str(ctx.settings[settings[0]])
            if destination == "event_hub":
                out["eventHubName"] = str(ctx.settings[EVENT_HUB_NAME_SETTING])
        return out

    def plan(self, ctx: PlanContext, params: DiagnosticLogsParams) -> list[Change]:
        target = ids.canonical(ctx.finding.resource_id)
        rid = ids.parse(target)
        if not rid.subscription_id or not rid.namespace or ids.type_key(rid.type) == ids.type_key(DIAGNOSTIC_TYPE):
            raise ActionError("expected a resource (/subscriptions/…/providers/<type>/<name>) to attach a diagnostic "
                              "setting to", action=self.name, resource_id=target)
        dest = self.destinations(ctx, params)
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
                    all(_sends(setting, k, n) for k, n in wanted) and \
                    all(_sends_metric(setting, m) for m in params.metrics):
                return []  # already sent where the deployment keeps its logs
        what = " and ".join([f"{n} ({'group' if k == 'categoryGroup' else 'category'})" for k, n in wanted]
                            + [f"{m} (metrics)" for m in params.metrics])
        where = "; ".join(f"{SINK_NAME[p]} {ids.parse(v).name} ({v})" for p, v in dest.items() if p in SINK_NAME)
        if "eventHubName" in dest:
            where += f", event hub {dest['eventHubName']}"
        cost = ("can break: nothing; the destination bills the data (Log Analytics ingestion, storage capacity, "
                "Event Hubs throughput)")
        linked = "ARM checks the destination as a linked scope of the write: granted " + ", ".join(
            f"{role.name} on the {SINK_NAME[SINK_PROPERTY[setting]].split(' (')[0]}"
            for setting, role in self.destination_roles if SINK_PROPERTY[setting] in dest) + " for it"
        candidate = next((s for s in existing if any(ids.same(_destination(s, p), v) for p, v in dest.items()
                                                     if p != "eventHubName")), None) \
            or next((s for s in existing if str(s.get("name", "")).lower() == params.name.lower()), None)
        if candidate is not None:
            after = self._repaired(candidate, dest, wanted, params)
            others = [p for p in ("marketplacePartnerId", "serviceBusRuleId") if _destination(candidate, p)]
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
        body: dict[str, Any] = {**dest, "logs": [{k: n, "enabled": True} for k, n in wanted],
                                "metrics": [{"category": m, "enabled": True} for m in params.metrics]}
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
        metrics = [e for e in new.get("metrics") or [] if isinstance(e, dict)]
        for name in params.metrics:
            metric = next((e for e in metrics if str(e.get("category") or "").lower() == name.lower()), None)
            if metric is None:
                metrics.append({"category": name, "enabled": True})
            else:
                metric["enabled"] = True
        new["metrics"] = metrics
        return after

    # grants ------------------------------------------------------------------------------------------
    def grants(self, change: Change) -> list[GrantNeed]:
        """Monitoring Contributor at the resource (the setting's write), then, for a PUT, the right to use each
        destination at that destination (an Event Hub's at its namespace): ARM checks it as a linked scope."""
        needs = [GrantNeed(self.grant_scope(change), self.role, "Microsoft.Insights/diagnosticSettings/write")]
        if change.operation == "delete" or change.after is None:
            return needs
        for setting, role in self.destination_roles:
            sink = _destination(change.after, SINK_PROPERTY[setting])
            if sink:
                scope = event_hub_namespace(sink) if setting == EVENT_HUB_RULE_SETTING else ids.canonical(sink)
                needs.append(GrantNeed(scope, role, f"{LINKED_OPERATIONS[setting]} (a linked scope)"))
        return needs

    # verify ------------------------------------------------------------------------------------------
    def differences(self, want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
        out = [f"{p} is {_destination(have, p) or '<not set>'}, expected {_destination(want, p)}"
               for p in ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId", "eventHubName")
               if _destination(want, p) and not ids.same(_destination(have, p), _destination(want, p))]
        for e in _logs(want):
            kind, name = _entry_key(e)
            if _enabled(e) and not _sends(have, kind, name):
                out.append(f"{'category group' if kind == 'categoryGroup' else 'category'} {name} is not sent")
        metrics = props(want).get("metrics")
        for m in metrics if isinstance(metrics, list) else []:
            if isinstance(m, dict) and _enabled(m) and not _sends_metric(have, str(m.get("category") or "")):
                out.append(f"metric category {m.get('category')} is not sent")
        return out

    def written(self, change: Change) -> str:
        sent = [str(e.get("categoryGroup") or e.get("category")) for e in _logs(change.after or {}) if _enabled(e)]
        metrics = props(change.after or {}).get("metrics")
        sent += [f"{m.get('category')} (metrics)" for m in metrics if isinstance(m, dict) and _enabled(m)] \
            if isinstance(metrics, list) else []
        return f": logs {', '.join(sent)}"
