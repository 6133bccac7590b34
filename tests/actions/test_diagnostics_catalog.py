"""The catalog's diagnostic-setting definitions, each claimed by a playbook that sends what it asks where it asks.

Azure Policy's diagnostic-setting definitions differ in three ways that matter to a fix (Azure/azure-policy
built-in-policies/policyDefinitions/Monitoring/DS_{LA,ST,EH}_<type>_DINE.json and the older per-service ones):
the destination (a Log Analytics workspace, a storage account, an Event Hub: the ``DS_ST`` one is not satisfied
by a workspace), the category group (``audit``, or ``allLogs`` for the types that have no audit group) or named
categories, and whether metrics count. One playbook per combination; each plans, on documents shaped as the REST
API spec examples return them, the setting its definitions deploy - created, repaired, or nothing when it is
already there - and refuses, naming the setting, when its destination is not configured.
"""

from __future__ import annotations

from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY
from remediator.azure.reader import READ_API_VERSIONS, LiveState, api_version_of
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.planning.planner import Planner
from remediator.playbooks import Playbook
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, four_shapes, make_finding
from tests.support.contract import LOGS, example, rid
from tests.support.engine import PLAYBOOKS

ACTION = REGISTRY["monitor.enable-diagnostic-logs"]
ARCHIVE = rid("rg-logs", "Microsoft.Storage/storageAccounts/stauditarchive")
NAMESPACE = rid("rg-logs", "Microsoft.EventHub/namespaces/ehn-siem")
RULE = f"{NAMESPACE}/authorizationRules/RootManageSharedAccessKey"
HUB = "resource-logs"
EVERYWHERE = {"diagnostics_workspace_id": LOGS, "diagnostics_storage_account_id": ARCHIVE,
              "diagnostics_event_hub_authorization_rule_id": RULE, "diagnostics_event_hub_name": HUB}
SINKS = {"workspace": {"workspaceId": LOGS}, "storage": {"storageAccountId": ARCHIVE},
         "event_hub": {"eventHubAuthorizationRuleId": RULE, "eventHubName": HUB}}
DIAGNOSTICS = [p for p in PLAYBOOKS if any(s.action == ACTION.name for s in p.steps)]

DATABRICKS = rid("rg-data", "Microsoft.Databricks/workspaces/dbw-features")
HSM = rid("rg-keys", "Microsoft.KeyVault/managedHSMs/hsm-models")
NSG = rid("rg-web", "Microsoft.Network/networkSecurityGroups/nsg-front")
STORAGE = rid("rg-data", "Microsoft.Storage/storageAccounts/sttraining")
SERVICES = {"fileServices": "storage__2023-05-01__FileServicesGet.json",
            "queueServices": "storage__2023-05-01__QueueServicesGet.json",
            "tableServices": "storage__2023-05-01__TableServicesGet.json"}


def planner(docs: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> Planner:
    return Planner(playbooks=PLAYBOOKS, state=SavedState(docs), settings=EVERYWHERE if settings is None else settings)


def target_of(rtype: str) -> str:
    names = "/".join(f"{t}/x{i}" for i, t in enumerate(rtype.split("/")[1:]))
    return rid("rg-ai", f"{rtype.split('/', maxsplit=1)[0]}/{names}")


def step_params(playbook: Playbook) -> Any:
    (step,) = playbook.steps
    return ACTION.parse_params(step.params)


def expected_sinks(playbook: Playbook) -> dict[str, str]:
    named = step_params(playbook).destinations or ["workspace", "storage"]
    return {k: v for d in named for k, v in SINKS[d].items()}


@pytest.mark.parametrize("playbook", DIAGNOSTICS, ids=lambda p: p.name)
def test_each_definition_on_each_type_plans_the_setting_at_its_destination(playbook: Playbook) -> None:
    """With every destination configured, each playbook sends to its own and no other (a storage definition is
    never satisfied with a workspace), the groups, categories and metrics its step names."""
    params = step_params(playbook)
    for rtype in playbook.match.resource_types:
        target = target_of(rtype)
        findings = [make_finding(target, kind="policy", type=p) for p in playbook.match.policies]
        for result in planner([{"id": target, "name": "x", "type": rtype, "properties": {}}]).plan(findings):
            assert (result.outcome, result.playbook, result.risk) == ("changes", playbook.name, "low"), result.reason
            (change,) = result.changes
            body = change.after["properties"]  # type: ignore[index]
            assert {k: v for k, v in body.items() if k not in ("logs", "metrics")} == expected_sinks(playbook)
            assert body["logs"] == [{"categoryGroup": g, "enabled": True} for g in params.category_groups] + \
                [{"category": c, "enabled": True} for c in params.categories]
            assert body["metrics"] == [{"category": m, "enabled": True} for m in params.metrics]
    assert playbook.approval.mode == "auto"


def test_a_storage_definition_is_refused_with_only_a_workspace_naming_the_setting() -> None:
    """Enable logging by category group for Key vaults to Storage (DS_ST_keyvault-vaults_DINE.json)."""
    vault = rid("rg-keys", "Microsoft.KeyVault/vaults/kv-models")
    finding = make_finding(vault, kind="policy", type="edf35972-ed56-4c2f-a4a1-65f0471ba702")
    doc = example("keyvault__2024-11-01__getVault.json", vault)
    (result,) = planner([doc], {"diagnostics_workspace_id": LOGS}).plan([finding])
    assert (result.outcome, result.playbook) == ("error", "diagnostics-audit-logs-to-storage")
    assert "diagnostics_storage_account_id (settings file key diagnostics_storage_account_id or " \
           "REMEDIATOR_DIAGNOSTICS_STORAGE_ACCOUNT_ID) is not set" in result.reason
    assert "\n" not in result.reason


def test_an_event_hub_definition_needs_the_hub_as_well_as_the_rule() -> None:
    finding = make_finding(HSM, kind="policy", type="1abe42e1-a726-4dee-94c2-79f364dac9b7")  # DS_EH managed HSMs
    doc = example("keyvault__2024-11-01__ManagedHsm_Get.json", HSM)
    settings = {"diagnostics_workspace_id": LOGS, "diagnostics_event_hub_authorization_rule_id": RULE}
    (result,) = planner([doc], settings).plan([finding])
    assert result.outcome == "error"
    assert "diagnostics_event_hub_name (settings file key diagnostics_event_hub_name or " \
           "REMEDIATOR_DIAGNOSTICS_EVENT_HUB_NAME) is not set" in result.reason


def test_databricks_sends_all_logs_to_the_workspace_then_plans_nothing() -> None:
    """Databricks has no audit group: DS_LA_databricks-workspaces_DINE.json deploys allLogs only."""
    doc = example("databricks__2024-05-01__WorkspaceGet.json", DATABRICKS)
    for result in planner([doc]).plan(four_shapes(DATABRICKS, policy=_full("454c7d4b"))):
        assert (result.outcome, result.playbook) == ("changes", "diagnostics-all-logs-to-workspace")
        (change,) = result.changes
        assert change.after["properties"] == {  # type: ignore[index]
            "workspaceId": LOGS, "logs": [{"categoryGroup": "allLogs", "enabled": True}], "metrics": []}
        assert "can break: nothing" in change.note
        assert "Monitoring Contributor on the Log Analytics workspace" in change.note
        again = planner([doc, change.after]).plan([make_finding(DATABRICKS, kind="policy", type=_full("454c7d4b"))])
        assert [r.outcome for r in again] == ["no_changes"]


def _full(prefix: str) -> str:
    return next(p for pb in DIAGNOSTICS for p in pb.match.policies if p.startswith(prefix))


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_storage_services_log_by_category_with_metrics_and_repair_the_setting_on_the_workspace(service: str) -> None:
    """File, queue and table services as their spec examples return them (…ServicesLogsToWorkspace_DINE.json):
    created with StorageRead/Write/Delete and AllMetrics; a setting already on the workspace sending reads only,
    with its metric disabled, is repaired (not duplicated); the repaired one plans nothing."""
    target = f"{STORAGE}/{service}/default"
    doc = example(SERVICES[service], target)
    policy = {"fileServices": "25a70cc8", "queueServices": "7bd000e3", "tableServices": "2fb86bf3"}[service]
    finding = make_finding(target, kind="policy", type=_full(policy))
    (result,) = planner([doc]).plan([finding])
    assert (result.outcome, result.playbook) == ("changes", "diagnostics-enable-storage-service-logs")
    (created,) = result.changes
    assert created.resource_id == f"{target}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit"
    assert created.after["properties"]["logs"] == [  # type: ignore[index]
        {"category": c, "enabled": True} for c in ("StorageRead", "StorageWrite", "StorageDelete")]
    assert created.after["properties"]["metrics"] == [{"category": "AllMetrics", "enabled": True}]  # type: ignore[index]

    existing = arm_fixture("monitor__2021-05-01-preview__getDiagnosticSetting.json")
    existing.update(id=f"{target}/providers/microsoft.insights/diagnosticSettings/team", name="team")
    existing["properties"] = {"workspaceId": LOGS.lower(), "logs": [{"category": "StorageRead", "enabled": True}],
                              "metrics": [{"category": "Transaction", "enabled": False}]}
    (result,) = planner([doc, existing]).plan([finding])
    (repair,) = result.changes
    assert (repair.operation, repair.resource_id) == ("update", existing["id"])
    assert repair.after["properties"]["logs"] == [  # type: ignore[index]
        {"category": c, "enabled": True} for c in ("StorageRead", "StorageWrite", "StorageDelete")]
    assert repair.after["properties"]["metrics"] == [  # type: ignore[index]
        {"category": "Transaction", "enabled": False}, {"category": "AllMetrics", "enabled": True}]
    assert ACTION.differences(repair.after, existing) == [  # type: ignore[arg-type]
        "category storagewrite is not sent", "category storagedelete is not sent",
        "metric category AllMetrics is not sent"]
    assert planner([doc, repair.after]).plan([finding])[0].outcome == "no_changes"  # type: ignore[list-item]


def test_a_network_security_group_archives_all_logs_to_the_storage_account() -> None:
    """Deploy Diagnostic Settings for Network Security Groups (DiagnosticSettingsForNSG_DINE.json): to storage."""
    doc = example("network__2024-05-01__NetworkSecurityGroupGet.json", NSG)
    finding = make_finding(NSG, kind="policy", type=_full("c9c29499"))
    (result,) = planner([doc]).plan([finding])
    assert (result.outcome, result.playbook) == ("changes", "diagnostics-all-logs-to-storage")
    (change,) = result.changes
    assert change.after["properties"] == {  # type: ignore[index]
        "storageAccountId": ARCHIVE, "logs": [{"categoryGroup": "allLogs", "enabled": True}], "metrics": []}
    assert "Reader and Data Access on the storage account" in change.note
    assert [(n.scope, n.role.name) for n in ACTION.grants(change)] == [
        (NSG, "Monitoring Contributor"), (ARCHIVE, "Reader and Data Access")]


def test_an_event_hub_setting_already_streaming_all_logs_plans_nothing() -> None:
    """The REST example's setting streams allLogs through an event hub's rule: with that rule and hub configured
    the audit definition is satisfied (allLogs covers audit) and nothing is planned."""
    existing = arm_fixture("monitor__2021-05-01-preview__getDiagnosticSetting.json")
    existing.update(id=f"{HSM}/providers/microsoft.insights/diagnosticSettings/mysetting")
    rule = existing["properties"]["eventHubAuthorizationRuleId"]
    existing["properties"]["eventHubName"] = "myeventhub"
    doc = example("keyvault__2024-11-01__ManagedHsm_Get.json", HSM)
    settings = {"diagnostics_event_hub_authorization_rule_id": rule, "diagnostics_event_hub_name": "MyEventHub"}
    finding = make_finding(HSM, kind="policy", type=_full("1abe42e1"))
    (result,) = planner([doc, existing], settings).plan([finding])
    assert (result.outcome, result.playbook) == ("no_changes", "diagnostics-audit-logs-to-event-hub")


def test_the_event_hub_write_needs_its_namespace_granted_and_lands_through_fakearm() -> None:
    """ARM checks authorizationRules/listkeys/action on the rule as a linked scope: Monitoring Contributor at the
    HSM alone is refused (LinkedAuthorizationFailed); with Azure Event Hubs Data Owner at the namespace the
    setting is written, verified, and a second plan on the live state plans nothing."""
    executor = "7a0c4e2b-91d3-4f6a-8b5c-2e3d4f5a6b7c"
    doc = example("keyvault__2024-11-01__ManagedHsm_Get.json", HSM)
    finding = make_finding(HSM, kind="policy", type=_full("1abe42e1"))
    with FakeArm() as arm:
        arm.load([doc, {"id": NAMESPACE, "name": "ehn-siem", "type": "Microsoft.EventHub/namespaces",
                        "location": "westeurope", "properties": {}}])
        live = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients()), settings=EVERYWHERE)
        (change,) = live.plan_one(finding).changes
        assert change.after["properties"] == {  # type: ignore[index]
            "eventHubAuthorizationRuleId": RULE, "eventHubName": HUB,
            "logs": [{"categoryGroup": "audit", "enabled": True}], "metrics": []}
        needs = ACTION.grants(change)
        assert [(n.scope, n.role.name) for n in needs] == [
            (HSM, "Monitoring Contributor"), (NAMESPACE, "Azure Event Hubs Data Owner")]
        arm.enforce_grants(executor)
        arm.assign_role(executor, needs[0].role.id, HSM)
        with pytest.raises(ActionError, match=r"LinkedAuthorizationFailed.*authorizationRules/listkeys/action"):
            ACTION.apply(arm.clients(principal_id=executor), change)
        arm.assign_role(executor, needs[1].role.id, NAMESPACE)
        ACTION.apply(arm.clients(principal_id=executor), change)
        assert ACTION.verify(LiveState(arm.clients()), change) is None
        assert live.plan_one(finding).outcome == "no_changes"


def test_a_storage_account_sends_its_metrics_only() -> None:
    """AccountStorageLogsToWorkspace_DINE.json: the account's setting carries AllMetrics (its logs are per
    service); an empty group list with metrics is a valid step."""
    doc = example("storage__2023-05-01__StorageAccountUpdate.json", STORAGE)
    (result,) = planner([doc]).plan([make_finding(STORAGE, kind="policy", type=_full("59759c62"))])
    (change,) = result.changes
    assert change.after["properties"] == {  # type: ignore[index]
        "workspaceId": LOGS, "logs": [], "metrics": [{"category": "AllMetrics", "enabled": True}]}
    assert ids.same(change.resource_id, f"{STORAGE}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit")


def test_every_type_the_diagnostic_playbooks_claim_is_read_live() -> None:
    """Each type is readable by the live reader: a generic GET at a stable version of its REST spec (registered in
    remediator.actions.diagnostics), served by FakeArm, or one of the SDK getters other actions' tests cover; a live
    plan on a Synapse Data Explorer pool creates the setting."""
    types = sorted({ids.type_key(t) for p in DIAGNOSTICS for t in p.match.resource_types})
    sdk = {"microsoft.storage/storageaccounts", "microsoft.network/networksecuritygroups",
           "microsoft.network/virtualnetworks", "microsoft.containerregistry/registries"}
    generic = [t for t in types if t not in sdk]
    assert [t for t in generic if not (t in READ_API_VERSIONS or api_version_of(t))] == []
    docs = [{"id": target_of(t), "name": ids.parse(target_of(t)).name, "type": t, "location": "westeurope",
             "properties": {}} for t in generic]
    with FakeArm() as arm:
        arm.load(docs)
        state = LiveState(arm.clients())
        assert [t for t, d in zip(generic, docs, strict=True) if (state.get(d["id"]) or {}).get("id") is None] == []
        finding = make_finding(target_of("Microsoft.Synapse/workspaces/kustoPools"), kind="policy",
                               type=_full("887dc342"))
        live = Planner(playbooks=PLAYBOOKS, state=state, settings=EVERYWHERE)
        assert live.plan_one(finding).outcome == "changes"


def test_on_live_shaped_documents_each_claiming_playbook_creates_then_plans_nothing() -> None:
    """The live-shaped estate (tests/fixtures/live: AI services, Search, ML, Key Vault, Cosmos DB, registries,
    storage, networks, as Azure returns them today): every diagnostic playbook claiming a document's type plans
    one setting on it at its destination, and a second plan with that setting in the state plans nothing."""
    from tests.support.live import live_documents

    seen = set()
    for doc in live_documents():
        rtype = ids.type_key(str(doc.get("type", "")))
        for playbook in (p for p in DIAGNOSTICS if rtype in p.match.resource_types):
            finding = make_finding(str(doc["id"]), kind="policy", type=playbook.match.policies[0])
            only = Planner(playbooks=type(PLAYBOOKS)([playbook]), state=SavedState([doc]), settings=EVERYWHERE)
            (change,) = only.plan_one(finding).changes
            assert change.operation == "create"
            assert ids.is_under(change.resource_id, str(doc["id"]))
            fixed = Planner(playbooks=type(PLAYBOOKS)([playbook]), state=SavedState([doc, change.after]),
                            settings=EVERYWHERE)
            assert fixed.plan_one(finding).outcome == "no_changes", (playbook.name, doc["name"])
            seen.add(rtype)
    assert len(seen) >= 8, seen
