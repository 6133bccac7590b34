"""monitor.enable-diagnostic-logs: one diagnostic setting on any resource, to the configured workspace.

Findings in the shapes Azure sends (Azure Policy events, the Key Vault recommendation) on the mission's
types plan the creation of ``{resource}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit``
sending the audit category group to ``diagnostics_workspace_id``; without the setting, one refusal line
naming it; an existing setting already sending the logs there plans nothing; one pointing at the
workspace but missing the group is repaired; five settings elsewhere are Azure's limit. Contract (PIM
grant at the resource, apply, verify, undo): tests/actions/test_contract.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY
from remediator.actions.base import PlanContext
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.planning.planner import Planner
from remediator.testing import FakeArm
from tests.support.builders import arm_fixture, four_shapes, make_finding
from tests.support.contract import ACCOUNT, LOGS, VAULT, account, rid
from tests.support.engine import PLAYBOOKS

ACTION = REGISTRY["monitor.enable-diagnostic-logs"]
SETTINGS = {"diagnostics_workspace_id": LOGS}
OURS = f"{ACCOUNT}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit"
SEARCH = rid("rg-ai", "Microsoft.Search/searchServices/srch-rag")
FACTORY = rid("rg-data", "Microsoft.DataFactory/factories/adf-features")
WEBAPP = rid("rg-web", "Microsoft.Web/sites/app-recommender")
BLOB = rid("rg-data", "Microsoft.Storage/storageAccounts/stdata/blobServices/default")
OTHER_LOGS = rid("rg-other", "Microsoft.OperationalInsights/workspaces/law-team")


def resource(resource_id: str) -> dict[str, Any]:
    return {"id": resource_id, "name": ids.parse(resource_id).name, "type": ids.resource_type(resource_id),
            "location": "westeurope", "properties": {}}


def setting(on: str, name: str, **props: Any) -> dict[str, Any]:
    """The REST example's diagnostic setting (allLogs to a storage account, an Event Hub and a partner), moved
    onto ``on`` as ``name``, ``props`` replacing its properties."""
    doc = arm_fixture("monitor__2021-05-01-preview__getDiagnosticSetting.json")
    doc.update(id=f"{on}/providers/microsoft.insights/diagnosticSettings/{name}", name=name)
    doc["properties"].update(props)
    return doc


def planner(docs: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> Planner:
    return Planner(playbooks=PLAYBOOKS, state=SavedState(docs), settings=SETTINGS if settings is None else settings)


AI_POLICY = "1b4d1c4e-934c-4703-944c-27c82c06bebb"  # Diagnostic logs in Azure AI services resources should be enabled


@pytest.mark.parametrize(("target", "assessment", "policy"), [
    (ACCOUNT, None, AI_POLICY),
    (SEARCH, None, "b4330a05-a843-4bc8-bf9a-cacce50c67f4"),      # Resource logs in Search services
    (VAULT, "88bbc99c-e5af-ddd7-6105-6150b2bfa519", "cf820ca0-f99e-4f3e-84fb-66e913812d21"),  # Key Vault
    (WEBAPP, "40394a2c-60fb-7cc5-1944-065772e94f05", "91a78b24-f231-4a8a-8da9-02c35b2b6510"),  # App Service
    (SEARCH, "dea5192e-1bb3-101b-b70c-4646546f5e1e", None),     # Diagnostic logs in Azure AI services (Search)
])
def test_each_shape_plans_the_audit_setting_to_the_workspace(target: str, assessment: str | None,
                                                              policy: str) -> None:
    findings = four_shapes(target, assessment=assessment, policy=policy)
    for result in planner([resource(target)]).plan(findings):
        assert (result.outcome, result.playbook, result.risk) == ("changes", "diagnostics-enable-audit-logs", "low")
        (change,) = result.changes
        assert (change.operation, change.before) == ("create", None)
        assert change.resource_id == f"{target}/providers/Microsoft.Insights/diagnosticSettings/remediator-audit"
        assert change.after["properties"] == {  # type: ignore[index]
            "workspaceId": LOGS, "logs": [{"categoryGroup": "audit", "enabled": True}], "metrics": []}
        assert "send audit (group) to Log Analytics workspace law-central" in change.note


def test_a_data_factory_sends_all_logs_it_has_no_audit_group() -> None:
    """DS_LA_datafactory-factories_DINE.json deploys an allLogs entry only: the all-logs playbook claims it."""
    findings = four_shapes(FACTORY, policy="751f9297-5aae-4313-af2d-2a89226a7856")
    for result in planner([resource(FACTORY)]).plan(findings):
        assert (result.outcome, result.playbook) == ("changes", "diagnostics-all-logs-to-workspace")
        assert result.changes[0].after["properties"]["logs"] == [  # type: ignore[index]
            {"categoryGroup": "allLogs", "enabled": True}]


def test_blob_services_send_their_read_write_and_delete_categories() -> None:
    """As Azure Policy's own deployment (BlobServicesLogsToWorkspace_DINE.json): by category."""
    for result in planner([resource(BLOB)]).plan(four_shapes(BLOB, policy="b4fe1a3b-0715-4c6c-a5ea-ffc33cf823cb")):
        assert (result.outcome, result.playbook) == ("changes", "diagnostics-enable-storage-service-logs")
        (change,) = result.changes
        assert change.after["properties"]["logs"] == [  # type: ignore[index]
            {"category": c, "enabled": True} for c in ("StorageRead", "StorageWrite", "StorageDelete")]


def test_the_shipped_playbook_applies_on_its_own() -> None:
    playbook = next(p for p in PLAYBOOKS if p.name == "diagnostics-enable-audit-logs")
    assert (playbook.risk, playbook.approval.mode) == ("low", "auto")


def test_without_the_setting_the_plan_is_one_line_naming_it() -> None:
    finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
    (result,) = planner(account(), settings={}).plan([finding])
    assert result.outcome == "error"
    assert "set diagnostics_workspace_id" in result.reason
    assert "REMEDIATOR_DIAGNOSTICS_WORKSPACE_ID" in result.reason
    assert "\n" not in result.reason


def test_a_storage_account_destination_alone_is_enough() -> None:
    sink = rid("rg-logs", "Microsoft.Storage/storageAccounts/stauditlogs")
    (change,) = plan_changes_with(account(), {"diagnostics_storage_account_id": sink})
    assert change.after["properties"]["storageAccountId"] == sink  # type: ignore[index]
    assert "workspaceId" not in change.after["properties"]  # type: ignore[index]
    assert "Reader and Data Access on the storage account" in change.note


def plan_changes_with(docs: list[dict[str, Any]], settings: dict[str, Any], **params: Any) -> list[Any]:
    finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
    (result,) = planner(docs, settings).plan([finding])
    assert result.outcome in ("changes", "no_changes"), result.reason
    return list(result.changes)


def test_a_setting_already_sending_all_logs_to_the_workspace_plans_nothing() -> None:
    docs = [*account(), setting(ACCOUNT, "to-central", workspaceId=LOGS.lower())]  # allLogs covers audit
    assert plan_changes_with(docs, SETTINGS) == []


def test_a_setting_on_the_workspace_without_the_audit_group_is_repaired_not_duplicated() -> None:
    """ARM refuses a second setting sending a category to the same sink: the one already there is fixed."""
    entries = [{"category": "RequestResponse", "enabled": True}, {"categoryGroup": "audit", "enabled": False}]
    existing = setting(ACCOUNT, "team-logs", workspaceId=LOGS, logs=entries)
    (change,) = plan_changes_with([*account(), existing], SETTINGS)
    assert (change.operation, change.resource_id) == ("update", existing["id"])
    logs = change.after["properties"]["logs"]  # type: ignore[index]
    assert logs == [{"category": "RequestResponse", "enabled": True}, {"categoryGroup": "audit", "enabled": True}]
    assert change.after["properties"]["storageAccountId"] == existing["properties"]["storageAccountId"]  # type: ignore[index]
    assert change.note.startswith("repair diagnostic setting team-logs")


def test_settings_sending_elsewhere_are_left_alone_and_ours_is_created() -> None:
    docs = [*account(), setting(ACCOUNT, "mysetting"), setting(ACCOUNT, "team", workspaceId=OTHER_LOGS)]
    (change,) = plan_changes_with(docs, SETTINGS)
    assert (change.operation, change.resource_id) == ("create", OURS)


def test_five_settings_elsewhere_are_azures_limit() -> None:
    docs = [*account(), *(setting(ACCOUNT, f"s{i}", workspaceId=OTHER_LOGS) for i in range(5))]
    finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
    (result,) = planner(docs).plan([finding])
    assert result.outcome == "error"
    assert "already has 5 diagnostic settings (s0, s1, s2, s3, s4), Azure Monitor's limit" in result.reason


def test_params_are_checked_when_the_playbook_loads() -> None:
    with pytest.raises(ValueError, match="name at least one of category_groups, categories or metrics"):
        ACTION.parse_params({"category_groups": []})
    with pytest.raises(ValueError, match="is not a log category name"):
        ACTION.parse_params({"categories": ["Audit Event"]})
    params = {"category_groups": ["allLogs"], "categories": ["AuditEvent"], "dedicated_tables": True}
    (change,) = _plan_with_settings(params)
    assert change.after["properties"]["logAnalyticsDestinationType"] == "Dedicated"  # type: ignore[index]
    assert change.after["properties"]["logs"] == [  # type: ignore[index]
        {"categoryGroup": "allLogs", "enabled": True}, {"category": "AuditEvent", "enabled": True}]


def _plan_with_settings(params: dict[str, Any]) -> list[Any]:
    ctx = PlanContext(finding=make_finding(ACCOUNT), state=SavedState(account()), settings=SETTINGS)
    return ACTION.plan(ctx, ACTION.parse_params(params))


def test_live_state_lists_only_the_resources_own_settings() -> None:
    """FakeArm lists diagnostic settings on the resource they are attached to (a sibling's are not its own)."""
    sibling = rid("rg-ai", "Microsoft.CognitiveServices/accounts/oai-dev")
    with FakeArm() as arm:
        arm.load([*account(), resource(sibling), setting(sibling, "dev", workspaceId=LOGS)])
        finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
        live = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients()), settings=SETTINGS)
        (result,) = live.plan([finding])
        assert [c.resource_id for c in result.changes] == [OURS]
        ACTION.apply(arm.clients(), result.changes[0])
        assert arm.get(OURS) is not None
        assert live.plan([finding])[0].outcome == "no_changes"  # a second plan on the fixed resource
        listed = LiveState(arm.clients()).list("Microsoft.Insights/diagnosticSettings", ACCOUNT)
        assert [d["name"] for d in listed] == ["remediator-audit"]


def test_a_setting_without_a_destination_is_refused_by_fakearm_as_by_arm() -> None:
    from azure.core.exceptions import HttpResponseError

    from remediator.azure.lro import write

    with FakeArm() as arm:
        arm.load(account())
        with pytest.raises(HttpResponseError, match="At least one destination"):
            write(arm.clients(), "PUT", OURS, "2021-05-01-preview", body={"properties": {"logs": []}})


def test_every_listed_policy_and_type_of_the_shipped_playbook_plans_the_setting() -> None:
    """Each of the playbook's definitions claims a finding on each of its resource types (8 policies, 8 types; the
    other diagnostic playbooks: test_diagnostics_catalog.py)."""
    playbook = next(p for p in PLAYBOOKS if p.name == "diagnostics-enable-audit-logs")
    for rtype in playbook.match.resource_types:
        names = "/".join(f"{t}/x{i}" for i, t in enumerate(rtype.split("/")[1:]))
        target = rid("rg-ai", f"{rtype.split('/')[0]}/{names}")
        findings = [make_finding(target, kind="policy", type=p) for p in playbook.match.policies]
        for result in planner([resource(target)]).plan(findings):
            assert (result.outcome, result.playbook) == ("changes", playbook.name), (rtype, result.reason)


def test_the_write_needs_the_destination_too_and_asks_a_grant_there() -> None:
    """ARM checks the workspace as a linked scope of the setting's PUT: Monitoring Contributor at the account
    alone is refused (LinkedAuthorizationFailed); the action's grants name both scopes."""
    from remediator.errors import ActionError

    executor = "7a0c4e2b-91d3-4f6a-8b5c-2e3d4f5a6b7c"
    monitoring = "749f88d5-cbae-40b8-bcfc-e573ddc772fa"
    (change,) = _plan_with_settings({})
    assert [(n.scope, n.role.name) for n in ACTION.grants(change)] == [
        (ACCOUNT, "Monitoring Contributor"), (LOGS, "Monitoring Contributor")]
    assert [n.scope for n in ACTION.grants(ACTION.undo(change))] == [ACCOUNT]  # a delete writes no destination
    with FakeArm() as arm:
        arm.load([*account(), resource(LOGS)])
        arm.enforce_grants(executor)
        arm.assign_role(executor, monitoring, ACCOUNT)
        with pytest.raises(ActionError, match=r"LinkedAuthorizationFailed.*workspaces/sharedKeys/action"):
            ACTION.apply(arm.clients(principal_id=executor), change)
        assert arm.get(OURS) is None
        arm.assign_role(executor, monitoring, LOGS)
        ACTION.apply(arm.clients(principal_id=executor), change)
        assert arm.get(OURS) is not None


def test_a_repaired_setting_keeping_an_event_hub_asks_its_grant_and_warns_of_the_partner() -> None:
    """The REST example's setting also streams to an Event Hub and a partner: the Event Hub is kept and granted
    (Azure Event Hubs Data Owner at its namespace, the linked scope ARM checks); the partner is not: a warning."""
    existing = setting(ACCOUNT, "mysetting", workspaceId=LOGS, logs=[{"categoryGroup": "audit", "enabled": False}])
    finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
    (result,) = planner([*account(), existing]).plan([finding])
    assert result.outcome == "changes"
    assert result.warnings == ("diagnostic setting mysetting also sends to marketplacePartnerId, kept as it is: ARM "
                               "may check the right to use it when the setting is written, and remediator grants "
                               "nothing there",)
    rule = existing["properties"]["eventHubAuthorizationRuleId"]  # an event hub's rule in namespace mynamespace
    namespace = rule[:rule.lower().index("/eventhubs/")]
    needs = [(n.scope, n.role.name) for n in ACTION.grants(result.changes[0])]
    assert (namespace, "Azure Event Hubs Data Owner") in needs


def test_arm_refuses_a_second_setting_to_the_same_sink_so_the_plan_repairs_the_first() -> None:
    """FakeArm answers as ARM does ("Data sinks can't be reused …"); the plan repairs the setting on the sink."""
    from azure.core.exceptions import HttpResponseError

    from remediator.azure.lro import write

    existing = setting(ACCOUNT, "team-logs", workspaceId=LOGS, storageAccountId=None, eventHubAuthorizationRuleId=None,
                       marketplacePartnerId=None, logs=[{"categoryGroup": "audit", "enabled": False},
                                                        {"category": "RequestResponse", "enabled": True}])
    with FakeArm() as arm:
        arm.load([*account(), existing])
        body = {"properties": {"workspaceId": LOGS, "logs": [{"category": "RequestResponse", "enabled": True}]}}
        with pytest.raises(HttpResponseError, match="Data sinks can't be reused in different settings"):
            write(arm.clients(), "PUT", OURS, "2021-05-01-preview", body=body)
        live = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients()), settings=SETTINGS)
        finding = make_finding(ACCOUNT, kind="policy", type=AI_POLICY)
        (change,) = live.plan_one(finding).changes
        assert (change.operation, change.resource_id) == ("update", existing["id"])
        ACTION.apply(arm.clients(), change)
        assert ACTION.verify(LiveState(arm.clients()), change) is None
        assert live.plan_one(finding).outcome == "no_changes"
