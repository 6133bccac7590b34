"""rbac.make-eligible: its parameters, the scopes it acts in, offline plans on saved state, and what it
says to approvers. The end-to-end story (scan, approval, PIM, apply, undo, guards) is
tests/scenarios/test_make_eligible.py; the contract case is tests/support/contract.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import PlanContext
from remediator.actions.eligible import INSTANCES, MakeEligible, MakeEligibleParams
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.findings.roles import CONTRIBUTOR, KEY_VAULT_ADMINISTRATOR, STORAGE_BLOB_DATA_OWNER
from remediator.testing import FakeArm
from tests.support.builders import make_finding

SUB = "2b7c9d1e-3f4a-4b5c-8d6e-7f8a9b0c1d2e"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-train"
STORE = f"{RG}/providers/Microsoft.Storage/storageAccounts/sttrain"
CONTAINER = f"{STORE}/blobServices/default/containers/weights"
PERSON = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
ACTION = MakeEligible()


def params(**given: Any) -> MakeEligibleParams:
    return ACTION.parse_params({"tags": {"workload": "ml-training"}, **given})


def assignment(scope: str, role: str = STORAGE_BLOB_DATA_OWNER, kind: str = "User") -> dict[str, Any]:
    return {"id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "name": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "type": "Microsoft.Authorization/roleAssignments",
            "properties": {"roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                               f"roleDefinitions/{role}", "principalId": PERSON,
                           "principalType": kind, "scope": scope}}


def instance(doc: dict[str, Any], end: str | None = None, kind: str = "Assigned") -> dict[str, Any]:
    scope = doc["properties"]["scope"]
    return {"id": f"{scope}/providers/{INSTANCES}/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "type": INSTANCES,
            "properties": {**doc["properties"], "originRoleAssignmentId": doc["id"], "endDateTime": end,
                           "assignmentType": kind}}


def tagged(rid: str, **tags: str) -> dict[str, Any]:
    return {"id": rid, "type": "", "properties": {}, "tags": tags}


def plan(docs: list[dict[str, Any]], target: dict[str, Any], **given: Any) -> list[Any]:
    ctx = PlanContext(finding=make_finding(target["id"], kind="operation",
                                           type="microsoft.authorization/roleassignments/write"),
                      state=SavedState(docs))
    return ACTION.plan(ctx, params(**given))


@pytest.mark.parametrize(("given", "message"), [
    ({"tags": {}}, "at least one of resource_types, resource_groups or tags"),
    ({"roles": ["Reader"]}, "unknown role 'Reader'"),
    ({"duration": "365 days"}, "not an ISO 8601 duration"),
    ({"duration": "PT1M"}, "between PT5M"),
    ({"time_bound_duration": "P9999D"}, "between PT5M"),
    ({"resource_types": ["storageAccounts"]}, "not an ARM resource type"),
    ({"resource_groups": ["rg/x"]}, "not a resource group name"),
    ({"service_principals": "eligible"}, "'time-bound' or 'remove'"),
])
def test_bad_parameters_name_the_field_and_what_is_valid(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ACTION.parse_params({"tags": {"workload": "ml-training"}, **given})


def test_roles_by_name_or_guid() -> None:
    assert params(roles=["key vault administrator", CONTRIBUTOR]).role_ids() == {KEY_VAULT_ADMINISTRATOR, CONTRIBUTOR}


def test_scopes_every_criterion_given_must_hold() -> None:
    state = SavedState([tagged(STORE, workload="ml-training"), tagged(RG)])
    assert ACTION.in_scopes(state, CONTAINER, params(resource_types=["Microsoft.Storage/storageAccounts"]))
    assert not ACTION.in_scopes(state, CONTAINER, params(resource_types=["Microsoft.KeyVault/vaults"]))
    assert ACTION.in_scopes(state, STORE, params(resource_groups=["RG-TRAIN"]))
    assert not ACTION.in_scopes(state, STORE, params(resource_groups=["rg-web"]))
    assert not ACTION.in_scopes(state, RG, params(tags={"workload": "ml-training"}))  # the group is not tagged
    assert ACTION.in_scopes(SavedState([tagged(RG, Workload="ML-Training")]), STORE, params())  # its group is
    assert not ACTION.in_scopes(state, f"/subscriptions/{SUB}", params())  # a subscription: no tags read


def test_offline_plan_needs_the_schedule_instances_and_leaves_time_bound_and_activated_alone() -> None:
    doc = assignment(STORE)
    store = tagged(STORE, workload="ml-training")
    with pytest.raises(ActionError, match="PIM lists no role assignment schedule instance"):
        plan([store, doc], doc)
    (change,) = plan([store, doc, instance(doc)], doc)
    assert (change.operation, change.after["pim"]["membership"]) == ("update", "eligible")
    assert plan([store, doc, instance(doc, end="2027-01-01T00:00:00Z")], doc) == []
    assert plan([store, doc, instance(doc, kind="Activated")], doc) == []
    assert plan([store, doc, instance(doc)], doc, roles=["Owner"]) == []  # not a role the step names
    assert plan([store, doc, instance(doc)], doc, tags={"workload": "web"}) == []  # not in scope


def test_a_service_principal_is_time_bound_or_removed_never_eligible_and_each_weighs() -> None:
    doc = assignment(STORE, kind="ServicePrincipal")
    docs = [tagged(STORE, workload="ml-training"), doc, instance(doc)]
    (bound,) = plan(docs, doc)
    assert bound.after["pim"] == {"membership": "active (time-bound)", "duration": "P30D"}
    assert "cannot be eligible" in bound.note
    (removed,) = plan(docs, doc, service_principals="remove")
    assert (removed.operation, removed.after) == ("delete", None)
    assert ACTION.weighs(removed).startswith("removes Storage Blob Data Owner")
    assert "ends after P30D" in ACTION.weighs(bound)
    person = assignment(STORE)
    (eligible,) = plan([tagged(STORE, workload="ml-training"), person, instance(person)], person)
    assert "activate it through PIM" in ACTION.weighs(eligible)
    assert ACTION.undo(eligible).after["pim"]["membership"] == "active (permanent)"


def test_the_plan_without_readable_role_settings_warns_and_still_stands() -> None:
    doc = assignment(STORE)
    ctx = PlanContext(finding=make_finding(doc["id"], kind="operation",
                                           type="microsoft.authorization/roleassignments/write"),
                      state=SavedState([tagged(STORE, workload="ml-training"), doc, instance(doc)]))
    (change,) = ACTION.plan(ctx, params())
    assert change.after["pim"]["activation"] == "PIM role settings not found"
    assert ctx.warnings == [f"PIM lists no role settings of Storage Blob Data Owner at {STORE}: activation rules "
                            "not shown"]


def test_principal_type_unknown_is_refused() -> None:
    doc = assignment(STORE, kind="")
    with pytest.raises(ActionError, match="names no principalType"):
        plan([tagged(STORE, workload="ml-training"), doc, instance(doc)], doc)



def live_change(arm: FakeArm, doc: dict[str, Any]) -> Any:
    """The plan of ``doc`` read live from ``arm`` (its storage account tagged for the default params)."""
    ctx = PlanContext(finding=make_finding(doc["id"], kind="operation",
                                           type="microsoft.authorization/roleassignments/write"),
                      state=LiveState(arm.clients()))
    (change,) = ACTION.plan(ctx, params())
    return change


def test_a_failed_delete_after_the_eligibility_says_the_principal_holds_both() -> None:
    doc = assignment(STORE)
    with FakeArm() as arm:
        arm.load([{**tagged(STORE, workload="ml-training"), "type": "Microsoft.Storage/storageAccounts"}, doc])
        change = live_change(arm, doc)
        arm.fail_next("DELETE", doc["name"], 409, body={"error": {"code": "ScopeLocked", "message": "locked"}})
        with pytest.raises(ActionError, match=r"is now eligible .* deleting the active assignment failed: 409 "
                                              r"ScopeLocked.*holds both"):
            ACTION.apply(arm.clients(), change)
        assert len(arm.pim.eligibilities(PERSON)) == 1
        assert arm.get(doc["id"]) is not None
        # delivered again (the same plan): the eligibility is found and not asked again; the delete goes through
        requests = len([r for r in arm.requests if "roleeligibilityschedulerequests" in r.path.lower()])
        ACTION.apply(arm.clients(), live_change(arm, doc))
        assert len([r for r in arm.requests if "roleeligibilityschedulerequests" in r.path.lower()]) == requests
        assert arm.get(doc["id"]) is None
        assert len(arm.pim.eligibilities(PERSON)) == 1
