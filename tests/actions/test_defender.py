"""defender.enable-plan: Defender plans switched on per subscription, from the findings Azure sends.

Findings in the four shapes (Defender assessment in the ARM and continuous-export shapes, Azure Policy
events in EventGridSchema and CloudEvents) on a subscription whose plan is off plan the PUT of the
pricing at Standard with the playbook's sub-plan and extensions, say it costs money and link the
pricing page; the plan is refused when deprecated, when the playbook names an unknown plan, and when
the state lacks the pricing. Apply, PIM at the subscription, verify and undo: tests/actions/test_contract.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions import REGISTRY
from remediator.actions.defender import PRICING_PAGE
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.planning.planner import Planner
from remediator.playbooks import PlaybookSet
from remediator.testing import FakeArm
from tests.support.builders import four_shapes, make_finding, plan_changes
from tests.support.contract import SUB, free_storage_plan, pricing
from tests.support.engine import PLAYBOOKS
from tests.support.pim import pim_apply

SUBSCRIPTION = f"/subscriptions/{SUB}"
STORAGE_PLAN = f"{SUBSCRIPTION}/providers/Microsoft.Security/pricings/StorageAccounts"
ACTION = REGISTRY["defender.enable-plan"]


def _exts(doc: Any) -> dict[str, Any]:
    return {e["name"]: e for e in doc["properties"].get("extensions") or []}


@pytest.mark.parametrize("finding", four_shapes(SUBSCRIPTION, assessment="1be22853-8ed1-4005-9907-ddad64cb1417",
                                                policy="640d2586-54d2-465f-877f-9ffc1d2109f4"),
                         ids=["assessment-arm", "assessment-export", "policy-eventgrid", "policy-cloudevents"])
def test_a_subscription_without_defender_for_storage_plans_the_plan_on(finding: Any) -> None:
    (result,) = Planner(playbooks=PLAYBOOKS, state=SavedState(free_storage_plan())).plan([finding])
    assert (result.outcome, result.playbook, result.risk) == ("changes", "defender-enable-storage", "high")
    (change,) = result.changes
    assert (change.operation, change.resource_id) == ("update", STORAGE_PLAN)
    after = change.after["properties"]  # type: ignore[index]
    assert (after["pricingTier"], after["subPlan"]) == ("Standard", "DefenderForStorageV2")
    exts = _exts(change.after)
    assert exts["OnUploadMalwareScanning"]["isEnabled"] == "True"
    cap = {"CapGBPerMonthPerStorageAccount": "10000"}
    assert exts["OnUploadMalwareScanning"]["additionalExtensionProperties"] == cap
    assert exts["SensitiveDataDiscovery"]["isEnabled"] == "True"
    assert "pricingTier: Free -> Standard" in change.note
    assert change.note.startswith("COST:")
    assert PRICING_PAGE in change.note.split(";")[0]  # within the first line Slack shows


def test_the_shipped_plan_asks_two_approvers() -> None:
    playbook = next(p for p in PLAYBOOKS if p.name == "defender-enable-storage")
    assert playbook.approval.quorum == 2
    assert playbook.risk == "high"


def test_a_plan_already_on_as_the_playbook_wants_plans_nothing() -> None:
    """The list example's Storage plan: Standard, DefenderForStorageV2, both extensions on, its own cap of 10."""
    finding = make_finding(SUBSCRIPTION, kind="policy", type="640d2586-54d2-465f-877f-9ffc1d2109f4")
    (result,) = Planner(playbooks=PLAYBOOKS, state=SavedState(pricing("StorageAccounts"))).plan([finding])
    assert result.outcome == "no_changes", result.reason


def test_an_extension_turned_off_is_turned_on_and_nothing_else_moves() -> None:
    [doc] = pricing("StorageAccounts")
    doc["properties"]["extensions"][1]["isEnabled"] = "False"  # SensitiveDataDiscovery
    (change,) = plan_changes(ACTION, SavedState([doc]), SUBSCRIPTION, plan="StorageAccounts",
                             sub_plan="DefenderForStorageV2", extensions=[{"name": "SensitiveDataDiscovery"}])
    assert change.after["properties"]["pricingTier"] == "Standard"  # type: ignore[index]
    assert _exts(change.after)["SensitiveDataDiscovery"]["isEnabled"] == "True"
    assert _exts(change.after)["OnUploadMalwareScanning"] == _exts(doc)["OnUploadMalwareScanning"]
    assert change.note.startswith("COST: Defender plan StorageAccounts is billed for what it covers in subscription ")
    assert "; extension SensitiveDataDiscovery: off -> on" in change.note
    body = ACTION.body(change.after)  # type: ignore[attr-defined]
    assert set(body["properties"]) == {"pricingTier", "subPlan", "enforce", "extensions"}  # no read-only property


def test_a_finding_on_the_pricing_itself_needs_no_plan_parameter() -> None:
    """"Security Center standard pricing tier should be selected" (a1181c5f-…) audits Microsoft.Security/pricings."""
    [doc] = pricing("AppServices")
    finding = make_finding(doc["id"], kind="policy", type="a1181c5f-672a-477a-979a-7d58aa086233")
    (change,) = plan_changes(ACTION, SavedState([doc]), finding)
    assert change.after["properties"]["pricingTier"] == "Standard"  # type: ignore[index]
    with pytest.raises(ActionError, match="the finding is about Defender plan AppServices, the playbook's step names "
                                        "plan AI"):
        plan_changes(ACTION, SavedState([doc]), finding, plan="AI")


def test_a_deprecated_plan_is_refused_naming_its_replacement() -> None:
    [doc] = pricing("KubernetesService")
    with pytest.raises(ActionError, match="deprecated; enable Containers instead"):
        plan_changes(ACTION, SavedState([doc]), SUBSCRIPTION, plan="KubernetesService")


def test_an_unknown_plan_is_a_playbook_error_with_the_closest_name() -> None:
    with pytest.raises(ValidationError, match="unknown Defender plan 'StorageAccount'; did you mean 'StorageAccounts'"):
        ACTION.parse_params({"plan": "StorageAccount"})


def test_a_subscription_finding_without_a_plan_parameter_is_refused() -> None:
    with pytest.raises(ActionError, match=r"needs params\.plan"):
        plan_changes(ACTION, SavedState(free_storage_plan()), SUBSCRIPTION)


def test_the_pricing_missing_from_saved_state_says_how_to_save_it() -> None:
    finding = make_finding(SUBSCRIPTION, kind="policy", type="640d2586-54d2-465f-877f-9ffc1d2109f4")
    (result,) = Planner(playbooks=PLAYBOOKS, state=SavedState([])).plan([finding])
    assert result.outcome == "error"
    assert f"az security pricing show --name StorageAccounts --subscription {SUB}" in result.reason


def test_plans_read_live_through_fakearm_and_apply_restores_on_undo() -> None:
    """The plan read live (a GET of the pricing at 2024-01-01), written as a PUT, then undone: Free again."""
    playbook = next(p for p in PLAYBOOKS if p.name == "defender-enable-storage")
    finding = make_finding(SUBSCRIPTION, kind="policy", type="640d2586-54d2-465f-877f-9ffc1d2109f4")
    with FakeArm() as arm:
        arm.load(free_storage_plan())
        planner = Planner(playbooks=PlaybookSet([playbook]), state=LiveState(arm.clients()))
        (change,) = planner.plan_one(finding).changes
        assert arm.writes == []
        ACTION.apply(arm.clients(), change)
        (put,) = arm.writes
        assert (put.method, put.path) == ("PUT", STORAGE_PLAN)
        assert ACTION.verify(LiveState(arm.clients()), change) is None
        assert planner.plan_one(finding).outcome == "no_changes"
        before = copy.deepcopy(change.before)
        ACTION.apply(arm.clients(), ACTION.undo(change))
        assert arm.get(STORAGE_PLAN)["properties"] == before["properties"]  # type: ignore[index]


@pytest.mark.parametrize("playbook", [p for p in PLAYBOOKS if p.name.startswith("defender-enable-")],
                         ids=lambda p: p.name)
def test_each_shipped_defender_playbook_turns_its_plan_on_from_each_of_its_policies(playbook: Any) -> None:
    """Every policy (and recommendation) a defender-enable-* playbook lists plans its plan at Standard."""
    (plan,) = {str(step.params.plan) for step in playbook.steps}
    free = {"id": f"{SUBSCRIPTION}/providers/Microsoft.Security/pricings/{plan}", "name": plan,
            "type": "Microsoft.Security/pricings", "properties": {"pricingTier": "Free", "enforce": "False"}}
    findings = [make_finding(SUBSCRIPTION, kind="policy", type=p) for p in playbook.match.policies] + \
        [make_finding(SUBSCRIPTION, kind="recommendation", type=r) for r in playbook.match.recommendations]
    for result in Planner(playbooks=PLAYBOOKS, state=SavedState([free])).plan(findings):
        assert (result.outcome, result.playbook) == ("changes", playbook.name), result.reason
        (change,) = result.changes
        assert change.resource_id == free["id"]
        assert change.after["properties"]["pricingTier"] == "Standard"  # type: ignore[index]
        assert PRICING_PAGE in change.note


def test_the_policy_state_the_scan_reads_plans_it_live() -> None:
    """A Policy Insights state record (the shape the backlog scan and `az policy state list` give) on the
    subscription, planned against live state (the pricing read at 2024-01-01)."""
    import json

    from remediator.findings.parse import parse_value
    from tests.conftest import ROOT

    example = json.loads((ROOT / "tests" / "fixtures" / "policy" / "policyinsights__2024-10-01__PolicyStates_"
                          "QuerySubscriptionLevelPolicyAssignmentScope.json").read_text(encoding="utf-8"))
    state = example["responses"]["200"]["body"]["value"][0]
    state.update(resourceId=SUBSCRIPTION, resourceType="Microsoft.Resources/subscriptions", resourceGroup="",
                 subscriptionId=SUB, policyDefinitionName="640d2586-54d2-465f-877f-9ffc1d2109f4",
                 policyDefinitionId="/providers/Microsoft.Authorization/policyDefinitions/"
                                    "640d2586-54d2-465f-877f-9ffc1d2109f4")
    (finding,) = parse_value(state, source="test")
    with FakeArm() as arm:
        arm.load(free_storage_plan())
        result = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients())).plan_one(finding)
        assert (result.outcome, result.playbook) == ("changes", "defender-enable-storage"), result.reason
        assert [c.resource_id for c in result.changes] == [STORAGE_PLAN]
        assert arm.writes == []


# -- every Defender-plan definition of the catalog: what each checks, planned on spec-example documents ---------------

MACHINE = f"/subscriptions/{SUB}/resourceGroups/rg-train/providers/Microsoft.Compute/virtualMachines/gpu-train-01"
MACHINE_PLAN = f"{MACHINE}/providers/Microsoft.Security/pricings/VirtualMachines"
SERVERS_PLAN = f"{SUBSCRIPTION}/providers/Microsoft.Security/pricings/VirtualMachines"


def _machine() -> dict[str, Any]:
    """The VirtualMachine_Get example (compute 2024-07-01) moved to MACHINE."""
    from tests.support.builders import arm_fixture

    doc = arm_fixture("compute__2024-07-01__VirtualMachine_Get.json")
    doc.update(id=MACHINE, name="gpu-train-01")
    return doc


def _free(plan: str) -> list[dict[str, Any]]:
    """The list example's ``plan`` at Free, as ARM shows a Free plan (no sub-plan, extensions or enablement time)."""
    [doc] = pricing(plan, pricingTier="Free")
    for key in ("subPlan", "extensions", "enablementTime"):
        doc["properties"].pop(key, None)
    return [doc]


def _inherited(**props: Any) -> dict[str, Any]:
    """The GetResourcePricingByNameVirtualMachines example moved onto MACHINE: the machine follows the subscription."""
    from tests.support.builders import arm_fixture

    doc = arm_fixture("security__2024-01-01__GetResourcePricingByNameVirtualMachines.json")
    doc["id"] = MACHINE_PLAN
    doc["properties"]["inheritedFrom"] = SUBSCRIPTION
    doc["properties"].update(props)
    if doc["properties"]["pricingTier"] == "Free":
        for key in ("subPlan", "extensions", "enablementTime"):
            doc["properties"].pop(key, None)
    return doc


def _plan(policy: str, docs: list[dict[str, Any]], target: str = SUBSCRIPTION) -> Any:
    finding = make_finding(target, kind="policy", type=policy)
    return Planner(playbooks=PLAYBOOKS, state=SavedState(docs)).plan_one(finding)


@pytest.mark.parametrize(("policy", "playbook", "plan"), [
    ("2913021d-f2fd-4f3d-b958-22354e2bdbcb", "defender-enable-app-service", "AppServices"),
    ("b99b73e7-074b-4089-9395-b7236f094491", "defender-enable-sql-databases", "SqlServers"),
    ("6581d072-105e-4418-827f-bd446d56421b", "defender-enable-sql-on-machines", "SqlServerVirtualMachines"),
    ("44433aa3-7ec2-4002-93ea-65c65ff0310a", "defender-enable-open-source-databases", "OpenSourceRelationalDatabases"),
])
def test_a_plan_at_free_is_put_at_standard_and_nothing_else(policy: str, playbook: str, plan: str) -> None:
    """The tier-only definitions: Standard, no sub-plan, no extension; two approvers (it costs money)."""
    result = _plan(policy, _free(plan))
    assert (result.outcome, result.playbook, result.risk) == ("changes", playbook, "high"), result.reason
    (change,) = result.changes
    assert change.after["properties"]["pricingTier"] == "Standard"  # type: ignore[index]
    assert ACTION.body(change.after) == {"properties": {"pricingTier": "Standard", "enforce": "False"}}  # type: ignore[attr-defined]
    assert change.note.startswith(f"COST: Defender plan {plan} is billed")
    assert PRICING_PAGE in change.note
    assert ACTION.weighs(change).startswith("costs money")


def test_servers_plan_2_adds_agentless_scanning_and_writes_the_mde_designation_off() -> None:
    """5eb6d64a counts MdeDesignatedSubscription by name (off): the list example's P2 plan does not list it."""
    [doc] = pricing("VirtualMachines")  # Standard, P2, AgentlessVmScanning on
    result = _plan("5eb6d64a-4086-4d7a-92da-ec51aed0332d", [doc])
    (change,) = result.changes
    assert "extension MdeDesignatedSubscription: not listed -> off" in change.note
    assert _exts(change.after)["MdeDesignatedSubscription"]["isEnabled"] == "False"
    assert not ACTION.weighs(change)  # already billed: no new cost
    fixed = [change.after]
    assert _plan("5eb6d64a-4086-4d7a-92da-ec51aed0332d", fixed).outcome == "no_changes"  # type: ignore[arg-type]


def test_the_enforced_servers_plan_sets_enforce() -> None:
    [doc] = pricing("VirtualMachines", enforce="False")
    (change,) = _plan("5f57b753-04b4-4e5e-aa31-c8888984497a", [doc]).changes
    assert change.after["properties"]["enforce"] == "True"  # type: ignore[index]
    assert ACTION.body(change.after)["properties"]["enforce"] == "True"  # type: ignore[attr-defined]
    assert "enforce: False -> True" in change.note


def test_basic_storage_checks_tier_and_sub_plan_and_turns_the_scanners_off_only_when_it_turns_the_plan_on() -> None:
    """17bc14a7 checks pricingTier and subPlan; its deployment also writes both extensions off."""
    policy = "17bc14a7-92e1-4551-8b8c-80f36953e166"
    (change,) = _plan(policy, free_storage_plan()).changes
    after = change.after["properties"]  # type: ignore[index]
    assert (after["pricingTier"], after["subPlan"]) == ("Standard", "DefenderForStorageV2")
    assert {n: e["isEnabled"] for n, e in _exts(change.after).items()} == {
        "OnUploadMalwareScanning": "False", "SensitiveDataDiscovery": "False"}
    # the list example's plan: Standard, DefenderForStorageV2, both scanners on: compliant, and left as it is
    assert _plan(policy, pricing("StorageAccounts")).outcome == "no_changes"


def test_the_full_containers_plan_turns_on_the_sensor_with_security_gating() -> None:
    [doc] = pricing("Containers")  # Standard, ContainerRegistriesVulnerabilityAssessments on
    (change,) = _plan("efd4031d-b232-4595-babf-ae817348e91b", [doc]).changes
    exts = _exts(change.after)
    assert exts["ContainerSensor"] == {"name": "ContainerSensor", "isEnabled": "True",
                                       "additionalExtensionProperties": {"SecurityGatingEnabled": "True"}}
    assert {n for n, e in exts.items() if e["isEnabled"] == "True"} == {
        "ContainerRegistriesVulnerabilityAssessments", "AgentlessDiscoveryForKubernetes", "AgentlessVmScanning",
        "ContainerSensor", "ContainerIntegrityContribution"}


def test_the_tier_only_cspm_definition_no_longer_plans_the_full_features() -> None:
    [doc] = pricing("CloudPosture", extensions=[])  # Standard, no extension on: compliant with 1f90fc71
    assert _plan("1f90fc71-a595-4066-8974-d4d0802e8ef0", [doc]).outcome == "no_changes"
    (change,) = _plan("72f8cee7-2937-403d-84a1-a4e3e57f3c21", [doc]).changes
    assert len(_exts(change.after)) == 5


def test_apis_get_the_smallest_sub_plan_when_turned_on_and_a_plan_already_on_keeps_its_own() -> None:
    policy = "7926a6d1-b268-4586-8197-e8ae90c877d7"
    free = {"id": f"{SUBSCRIPTION}/providers/Microsoft.Security/pricings/Api", "name": "Api",
            "type": "Microsoft.Security/pricings", "properties": {"pricingTier": "Free"}}
    (change,) = _plan(policy, [free]).changes
    assert change.after["properties"]["subPlan"] == "P1"  # type: ignore[index]
    on = copy.deepcopy(free)
    on["properties"] = {"pricingTier": "Standard", "subPlan": "P3"}
    assert _plan(policy, [on]).outcome == "no_changes"


# -- granular pricing: a Defender plan at a machine ------------------------------------------------------------------

def test_a_machine_gets_servers_plan_1_live_and_undo_lets_it_inherit_again() -> None:
    """1b8c0040 on a VM whose subscription has the servers plan off: the machine's pricing (read live at 2024-01-01,
    as the GET example answers it: inherited from the subscription) is PUT at Standard P1 under a grant at the machine;
    a second plan plans nothing; undo deletes the machine's own pricing (Pricings_Delete), and it follows the
    subscription again."""
    from remediator.actions.change import grant_scope

    finding = make_finding(MACHINE, kind="policy", type="1b8c0040-b224-4ea1-be6a-47254dd5a207")
    with FakeArm() as arm:
        arm.load([_machine(), *_free("VirtualMachines")])
        planner = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients()))
        result = planner.plan_one(finding)
        assert (result.outcome, result.playbook, result.risk) == ("changes", "defender-servers-p1-machines", "high")
        (change,) = result.changes
        assert change.resource_id == MACHINE_PLAN
        assert change.before["properties"]["inherited"] == "True"  # type: ignore[index]
        assert change.note.startswith("COST: Defender plan VirtualMachines is billed for what it covers in resource "
                                      "gpu-train-01")
        assert "the machine gets its own setting (it inherited Free from" in change.note
        assert (grant_scope(change), ACTION.role.name) == (MACHINE, "Security Admin")
        pim_apply(arm, ACTION, change, refused_first=True)  # 403 without it; a PIM grant at the machine, released
        put = next(w for w in arm.writes if w.path == MACHINE_PLAN and w.status < 300)
        assert (put.method, put.status) == ("PUT", 201)
        assert put.body == {"properties": {"pricingTier": "Standard", "subPlan": "P1"}}
        assert ACTION.verify(LiveState(arm.clients()), change) is None
        assert planner.plan_one(finding).outcome == "no_changes"
        undo = ACTION.undo(change)
        assert (undo.operation, undo.resource_id) == ("delete", MACHINE_PLAN)
        pim_apply(arm, ACTION, undo)
        assert [(w.method, w.status) for w in arm.writes if w.path == MACHINE_PLAN][-1] == ("DELETE", 200)
        assert ACTION.verify(LiveState(arm.clients()), undo) is None
        assert LiveState(arm.clients()).get(MACHINE_PLAN)["properties"]["inherited"] == "True"  # type: ignore[index]
        assert arm.get(SERVERS_PLAN)["properties"]["pricingTier"] == "Free"  # type: ignore[index]


def test_servers_plan_1_for_all_machines_moves_an_inherited_plan_2_to_plan_1_but_the_tag_definition_does_not() -> None:
    """1b8c0040 checks subPlan P1; 9e4879d9 checks the tier only (it deploys P1 where the plan is off)."""
    machine = _inherited()  # the example: Standard P2, inherited
    (change,) = _plan("1b8c0040-b224-4ea1-be6a-47254dd5a207", [machine], MACHINE).changes
    assert "subPlan: P2 -> P1" in change.note
    assert _plan("9e4879d9-c2a0-4e40-8017-1a5a5327c843", [machine], MACHINE).outcome == "no_changes"
    (on,) = _plan("9e4879d9-c2a0-4e40-8017-1a5a5327c843", [_inherited(pricingTier="Free")], MACHINE).changes
    assert (on.after["properties"]["pricingTier"], on.after["properties"]["subPlan"]) == ("Standard", "P1")  # type: ignore[index]


def test_switching_servers_off_at_a_machine_needs_its_own_setting_only_for_the_tag_definition() -> None:
    """f6ff485a checks pricingTier Free (inherited Free complies); 080fedce also inherited False."""
    inherits_free = _inherited(pricingTier="Free")
    assert _plan("f6ff485a-7630-4730-854d-cd3ad855435e", [inherits_free], MACHINE).outcome == "no_changes"
    result = _plan("080fedce-9d4a-4d07-abf0-9f036afbc9c8", [inherits_free], MACHINE)
    assert (result.playbook, result.risk) == ("defender-servers-off-machines-by-tag", "high")
    (change,) = result.changes
    assert ACTION.body(change.after) == {"properties": {"pricingTier": "Free"}}  # type: ignore[attr-defined]
    assert "stops protecting resource gpu-train-01" in change.note
    assert "COST" not in change.note
    own_free = _inherited(pricingTier="Free", inherited="False", inheritedFrom=None)
    assert _plan("080fedce-9d4a-4d07-abf0-9f036afbc9c8", [own_free], MACHINE).outcome == "no_changes"
    (off,) = _plan("f6ff485a-7630-4730-854d-cd3ad855435e", [_inherited()], MACHINE).changes
    assert "pricingTier: Standard -> Free" in off.note
    assert not ACTION.weighs(off)


def test_a_machine_cannot_override_an_enforced_subscription_plan() -> None:
    [sub] = pricing("VirtualMachines", enforce="True")
    result = _plan("f6ff485a-7630-4730-854d-cd3ad855435e", [sub, _inherited()], MACHINE)
    assert result.outcome == "error"
    assert "refused: the subscription's plan VirtualMachines is enforced on every resource" in result.reason


def test_what_pricings_update_refuses_at_a_resource_is_refused_at_plan_time() -> None:
    machine = SavedState([_inherited(pricingTier="Free")])
    with pytest.raises(ActionError, match="takes sub-plan P1 only; the step names P2"):
        plan_changes(ACTION, machine, MACHINE, plan="VirtualMachines", sub_plan="P2")
    with pytest.raises(ActionError, match="only plan VirtualMachines can be set at a resource, not StorageAccounts"):
        plan_changes(ACTION, machine, MACHINE, plan="StorageAccounts")
    account = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/st"
    with pytest.raises(ActionError, match=r"not at a Microsoft\.Storage/storageAccounts"):
        plan_changes(ACTION, machine, account, plan="VirtualMachines")


def test_fakearm_refuses_plan_2_at_a_machine_as_pricings_update_does() -> None:
    """The spec's rule, kept by FakeArm too: a machine's pricing takes sub-plan P1 only (400, one line)."""
    from remediator.actions.change import Change

    with FakeArm() as arm:
        arm.load([_machine(), *pricing("VirtualMachines")])
        before = LiveState(arm.clients()).get(MACHINE_PLAN)
        assert before is not None
        assert before["properties"]["inherited"] == "True"
        after = copy.deepcopy(before)
        after["properties"].update(pricingTier="Standard", subPlan="P2", inherited="False")
        bad = Change(action=ACTION.name, resource_id=MACHINE_PLAN, operation="update", before=before, after=after)
        with pytest.raises(ActionError, match="400 InvalidInputJson: At a resource the VirtualMachines plan supports "
                                              "subPlan 'P1' only"):
            ACTION.apply(arm.clients(), bad)


def test_any_plan_the_finding_names_at_free_is_put_at_standard() -> None:
    """a1181c5f audits Microsoft.Security/pricings: the finding is the pricing, the playbook names no plan."""
    [doc] = _free("KeyVaults")
    result = _plan("a1181c5f-672a-477a-979a-7d58aa086233", [doc], doc["id"])
    assert (result.outcome, result.playbook) == ("changes", "defender-standard-pricing-tier"), result.reason


def test_cosmos_threat_protection_is_planned_on_the_account_and_costs_money() -> None:
    """b5f04e03: the account's advancedThreatProtectionSettings/current, isEnabled true (its GET answers false
    for an account never set); two approvers."""
    from tests.support.contract import COSMOS, cosmos

    finding = make_finding(COSMOS, kind="policy", type="b5f04e03-92a3-4b09-9410-2cc5e5047656")
    with FakeArm() as arm:
        arm.load(cosmos())
        result = Planner(playbooks=PLAYBOOKS, state=LiveState(arm.clients())).plan_one(finding)
    assert (result.outcome, result.playbook, result.risk) == ("changes", "cosmos-enable-threat-protection", "high")
    (change,) = result.changes
    assert change.resource_id == f"{COSMOS}/providers/Microsoft.Security/advancedThreatProtectionSettings/current"
    assert change.note.startswith("COST: Defender for Azure Cosmos DB is billed for account cosmos-grounding")
    assert REGISTRY[change.action].weighs(change).startswith("costs money")
    playbook = next(p for p in PLAYBOOKS if p.name == "cosmos-enable-threat-protection")
    assert playbook.approval.quorum == 2


def test_turning_on_prompt_evidence_says_alerts_will_carry_prompts() -> None:
    """359a48a3 at its defaults turns on AIPromptEvidence and AIPromptSharingWithPurview: the approvers read what
    that means in the plan itself."""
    free = {"id": f"{SUBSCRIPTION}/providers/Microsoft.Security/pricings/AI", "name": "AI",
            "type": "Microsoft.Security/pricings", "properties": {"pricingTier": "Free"}}
    result = _plan("359a48a3-351a-4618-bb32-f1628645694b", [free])
    assert (result.playbook, result.risk) == ("defender-enable-ai-full", "high")
    (change,) = result.changes
    assert "with AIPromptEvidence on: Defender's AI alerts will carry excerpts of the suspicious prompts" in change.note
    assert "shared with Microsoft Purview" in change.note
    # the plain AI playbook turns the plan on without them
    (plain,) = _plan("c2c0c6d8-007b-4a48-8d9b-3539bddd8e87", [free]).changes
    assert "AIPromptEvidence" not in plain.note


@pytest.mark.parametrize(("plan", "other", "tier_only", "with_sub_plan", "sub_plan"), [
    ("KeyVaults", "PerKeyVault", "0e6763cc-5078-4e64-889d-ff4d9a839047", "1f725891-01c0-420a-9059-4fa46cb770b7",
     "PerTransaction"),
    ("Arm", "PerSubscription", "c3d20c29-b36d-48fe-808b-99a87530ad99", "b7021b2b-08fd-4dc0-9de7-3c6ece09faf9",
     "PerApiCall"),
])
def test_a_plan_on_another_sub_plan_complies_with_the_tier_only_definition_not_with_the_sub_plan_one(
        plan: str, other: str, tier_only: str, with_sub_plan: str, sub_plan: str) -> None:
    on = pricing(plan, subPlan=other)
    assert _plan(tier_only, on).outcome == "no_changes"
    (change,) = _plan(with_sub_plan, on).changes
    assert f"subPlan: {other} -> {sub_plan}" in change.note
    (turned_on,) = _plan(tier_only, _free(plan)).changes  # a plan turned on gets the sub-plan
    assert turned_on.after["properties"]["subPlan"] == sub_plan  # type: ignore[index]
