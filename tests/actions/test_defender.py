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
