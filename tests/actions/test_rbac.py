"""rbac.revoke-role-assignments: plan on saved role assignments (the RoleAssignments_ListForScope
example shape), then apply/verify/undo through the real authorization SDK against FakeArm."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from remediator import ids
from remediator.actions.base import PlanContext
from remediator.actions.change import Change
from remediator.actions.rbac import (
    CONTRIBUTOR,
    OWNER,
    READER,
    USER_ACCESS_ADMINISTRATOR,
    RevokeRoleAssignments,
    RevokeRoleAssignmentsParams,
)
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.findings.model import Finding, Severity
from tests.support.builders import apply_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LIST_EXAMPLE = FIXTURES / "arm" / "authorization__2022-04-01__RoleAssignments_ListForScope.json"
SUB = "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"
SUB_SCOPE = f"/subscriptions/{SUB}"
RG_SCOPE = f"{SUB_SCOPE}/resourceGroups/rg-app"
VM_ID = f"{RG_SCOPE}/providers/Microsoft.Compute/virtualMachines/vm1"
BAD = "ce2ce14e-85d7-4629-bdbc-454d0519d987"  # the principal of the REST example
OTHER = "5b8e2f35-0a54-4c63-9f0e-7d1a2c3b4e5f"
BOT = "0d3f6a1b-2c4e-4f58-9a7b-8c9d0e1f2a3b"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
CUSTOM = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"

ACTION = RevokeRoleAssignments()


def example_assignment() -> dict[str, Any]:
    """The one assignment of the RoleAssignments_ListForScope example (role 0b5fe924…, a custom role)."""
    body = json.loads(LIST_EXAMPLE.read_text(encoding="utf-8"))["responses"]["200"]["body"]
    return copy.deepcopy(body["value"][0])


def assignment(name: str, principal: str, role: str, scope: str, principal_type: str = "User",
               **extra: Any) -> dict[str, Any]:
    """A role assignment in the 2022-04-01 shape (the example's fields plus what ARM adds)."""
    props: dict[str, Any] = {
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        "principalId": principal, "principalType": principal_type, "scope": scope,
        "condition": None, "conditionVersion": None, "createdOn": "2025-03-14T09:12:44.0000000Z",
        "updatedOn": "2025-03-14T09:12:44.0000000Z", "createdBy": BOT, "updatedBy": BOT,
        "delegatedManagedIdentityResourceId": None, "description": None, **extra,
    }
    prefix = "" if scope == "/" else scope
    return {"id": f"{prefix}/providers/Microsoft.Authorization/roleAssignments/{name}", "name": name,
            "type": "Microsoft.Authorization/roleAssignments", "properties": props}


def guid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def estate() -> list[dict[str, Any]]:
    """BAD holds Owner (sub), Contributor (rg), Reader (rg), UAA (vm), a custom role (rg), and Owner at a
    management group; OTHER holds Owner (sub) and Contributor (rg)."""
    mg = "/providers/Microsoft.Management/managementGroups/corp"
    return [
        assignment(guid(1), BAD, OWNER, SUB_SCOPE),
        assignment(guid(2), BAD, CONTRIBUTOR, RG_SCOPE),
        assignment(guid(3), BAD, READER, RG_SCOPE),
        assignment(guid(4), BAD, USER_ACCESS_ADMINISTRATOR, VM_ID),
        assignment(guid(5), BAD, CUSTOM, RG_SCOPE),
        assignment(guid(6), BAD, OWNER, mg),
        assignment(guid(7), OTHER, OWNER, SUB_SCOPE, principal_type="ServicePrincipal"),
        assignment(guid(8), OTHER, CONTRIBUTOR, RG_SCOPE),
    ]


def finding(resource_id: str = SUB_SCOPE, **extra: Any) -> Finding:
    rid = ids.parse(resource_id)
    values: dict[str, Any] = {
        "id": "f1", "kind": "recommendation", "type": "050ac097-3dda-4d24-ab6d-82568e7a50cf",
        "title": "Blocked accounts with owner permissions on Azure resources should be removed",
        "severity": Severity.HIGH, "status": "Unhealthy", "resource_id": resource_id,
        "subscription_id": rid.subscription_id, "resource_group": rid.resource_group,
        "resource_type": rid.type, "source": "sub-assessment",
    }
    values.update(extra)
    return Finding(**values)


class ArmLikeState(SavedState):
    """Saved state whose role_assignments also returns management-group assignments, as ARM's
    list-for-scope does for a subscription under that group (saved ids cannot say which group)."""

    def role_assignments(self, scope: str, principal_id: str | None = None) -> list[dict[str, Any]]:
        inherited = [d for d in self.documents()
                     if d["id"].lower().startswith("/providers/microsoft.management/managementgroups/")
                     and principal_id in (None, d["properties"]["principalId"])]
        return [*super().role_assignments(scope, principal_id), *inherited]


def plan(docs: list[dict[str, Any]], f: Finding | None = None, protected: frozenset[str] = frozenset(),
         **params: Any) -> list[Change]:
    ctx = PlanContext(finding=f or finding(principal_id=BAD), state=ArmLikeState(docs),
                      protected_principals=protected)
    return ACTION.plan(ctx, ACTION.parse_params(params))


def names(changes: list[Change]) -> list[str]:
    return [ids.parse(c.resource_id).name for c in changes]


# --- plan ----------------------------------------------------------------------------------------------

def test_revokes_only_the_principals_privileged_assignments_at_or_under_the_scope() -> None:
    changes = plan(estate())
    assert names(changes) == [guid(1), guid(2), guid(4)]  # Owner sub, Contributor rg, UAA vm
    for c in changes:
        assert c.operation == "delete"
        assert c.after is None
        assert c.before is not None
        assert c.before["properties"]["principalId"] == BAD
    assert changes[0].before == estate()[0]  # the full document, as read
    assert "Owner at /providers/Microsoft.Management/managementGroups/corp" in changes[0].note


def test_another_principals_assignments_are_never_planned_even_if_the_reader_returns_them() -> None:
    class Leaky(SavedState):
        def role_assignments(self, scope: str, principal_id: str | None = None) -> list[dict[str, Any]]:
            return super().role_assignments(scope, None)  # ignores the principal filter

    ctx = PlanContext(finding=finding(principal_id=BAD), state=Leaky(estate()))
    changes = ACTION.plan(ctx, ACTION.parse_params({}))
    assert {c.before["properties"]["principalId"] for c in changes if c.before} == {BAD}


def test_principal_match_is_case_insensitive() -> None:
    assert names(plan(estate(), finding(principal_id=BAD.upper()))) == [guid(1), guid(2), guid(4)]


def test_assignments_above_the_scope_are_out_of_reach() -> None:
    rg_finding = finding(RG_SCOPE, principal_id=BAD)
    changes = plan(estate(), rg_finding)
    assert names(changes) == [guid(2), guid(4)]  # not the subscription Owner nor the MG Owner
    assert "also holds Owner at" in changes[0].note

    only_above = [assignment(guid(1), BAD, OWNER, SUB_SCOPE), assignment(guid(7), OTHER, OWNER, SUB_SCOPE)]
    with pytest.raises(ActionError, match=r"above the scope .*rg-app: out of this finding's reach") as e:
        plan(only_above, rg_finding)
    assert "\n" not in str(e.value)


def test_reader_and_unlisted_roles_are_untouched_and_nothing_to_do_is_no_change() -> None:
    docs = [assignment(guid(3), BAD, READER, RG_SCOPE), assignment(guid(7), OTHER, OWNER, SUB_SCOPE)]
    assert plan(docs) == []


def test_roles_by_name_or_guid_including_a_custom_role() -> None:
    assert names(plan(estate(), roles=["Reader"])) == [guid(3)]
    assert names(plan(estate(), roles=[CUSTOM.upper()])) == [guid(5)]
    example = example_assignment()  # its role 0b5fe924… is not built in: only revoked when named
    f = finding(SUB_SCOPE.replace(SUB, SUB), principal_id=BAD)
    assert plan([example], f) == []
    change = plan([example], f, roles=["0b5fe924-9a61-425c-96af-cfe6e287ca2d"])[0]
    assert change.before == example
    assert change.resource_id == example["id"]


def test_scope_keywords_and_explicit_scope() -> None:
    vm_alert = finding(VM_ID, kind="alert", type="ARM_AnomalousRBACRoleAssignment", principal_id=BAD)
    assert names(plan(estate(), vm_alert)) == [guid(4)]
    assert names(plan(estate(), vm_alert, scope="resource-group")) == [guid(2), guid(4)]
    assert names(plan(estate(), vm_alert, scope="subscription")) == [guid(1), guid(2), guid(4)]
    assert names(plan(estate(), vm_alert, scope=RG_SCOPE)) == [guid(2), guid(4)]
    with pytest.raises(ActionError, match="not in a resource group"):
        plan(estate(), finding(principal_id=BAD), scope="resource-group")


def test_the_bots_own_identity_is_refused_loudly() -> None:
    docs = [assignment(guid(9), BOT, OWNER, SUB_SCOPE, principal_type="ServicePrincipal"), *estate()]
    with pytest.raises(ActionError, match="refusing to revoke roles of remediator's own identity") as e:
        plan(docs, finding(principal_id=BOT), protected=frozenset({BOT.upper()}))
    assert "\n" not in str(e.value)
    with pytest.raises(ActionError, match="own identity"):  # even through the explicit parameter
        plan(docs, finding(principal_id=BAD), protected=frozenset({BOT}), principal_id=BOT)


def test_the_last_owner_of_a_subscription_is_not_revoked() -> None:
    docs = [assignment(guid(1), BAD, OWNER, SUB_SCOPE), assignment(guid(2), BAD, CONTRIBUTOR, RG_SCOPE)]
    with pytest.raises(ActionError, match="last Owner of subscription"):
        plan(docs)
    # an Owner inherited from a management group counts as another owner
    mg_owner = assignment(guid(6), OTHER, OWNER, "/providers/Microsoft.Management/managementGroups/corp")
    assert names(plan([*docs, mg_owner])) == [guid(1), guid(2)]


# --- principal resolution ------------------------------------------------------------------------------

def test_principal_from_an_identity_sub_assessment_resource() -> None:
    f = finding(f"{SUB_SCOPE}/identities/{BAD}")
    assert names(plan(estate(), f)) == [guid(1), guid(2), guid(4)]


def test_principal_from_the_parsed_sample_sub_assessment(fixtures: Path) -> None:
    findings_mod = pytest.importorskip("remediator.findings.parse")
    path = fixtures / "defender" / (
        "elastic-integrations__microsoft_defender_cloud__assessment__test-assessment.log__"
        "line6_disabled_owner_accounts_with_subassessment.json")
    parsed = [r for r in findings_mod.parse_value(json.loads(path.read_text()), source=str(path))
              if isinstance(r, Finding)]
    assert parsed
    principal = "abcdefaf-aaaa-4568-abcd-e98765567892"
    scope = "/subscriptions/5abcdef6-1234-5678-8912-e1234abcdef1"
    docs = [assignment(guid(1), principal, OWNER, scope), assignment(guid(2), OTHER, OWNER, scope)]
    for doc in docs:  # the example subscription, not ours
        doc["properties"]["roleDefinitionId"] = doc["properties"]["roleDefinitionId"].replace(SUB, scope[15:])
    changes = ACTION.plan(PlanContext(finding=parsed[0], state=SavedState(docs)), ACTION.parse_params({}))
    assert names(changes) == [guid(1)]


def alert_with(*entities: dict[str, Any]) -> Finding:
    return finding(SUB_SCOPE, kind="alert", type="ARM_AnomalousServiceOperation.Persistence",
                   entities=tuple(entities))


def test_principal_from_an_alert_account_entity() -> None:
    f = alert_with({"$id": "2", "type": "ip", "address": "81.2.69.142"},
                   {"$id": "5", "name": "sample", "upnsuffix": "contoso.com", "aadtenantid": OTHER,
                    "aaduserid": BAD, "asset": False, "type": "account"})
    assert names(plan(estate(), f)) == [guid(1), guid(2), guid(4)]


def test_entities_that_name_no_usable_principal() -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    f = alert_with({"$id": "centralus_15", "aaduserid": nil, "isvalid": False, "type": "account"},
                   {"$id": "7", "name": "Sample-account", "sid": "", "type": "account", "logonid": "0xbd6e"})
    with pytest.raises(ActionError, match=r"no principal to revoke.*set principal_id") as e:
        plan(estate(), f)
    assert "\n" not in str(e.value)
    two = alert_with({"type": "account", "aaduserid": BAD}, {"type": "account", "aaduserid": OTHER})
    with pytest.raises(ActionError, match="several account entities"):
        plan(estate(), two)
    assert names(plan(estate(), two, principal_id=BAD)) == [guid(1), guid(2), guid(4)]


def test_explicit_principal_wins_over_the_finding() -> None:
    docs = [*estate(), assignment(guid(9), OTHER, OWNER, RG_SCOPE)]
    docs.append(assignment(guid(10), BAD, OWNER, "/providers/Microsoft.Management/managementGroups/x"))
    assert names(plan(docs, finding(principal_id=BAD), principal_id=OTHER)) == [guid(7), guid(8), guid(9)]


# --- params / metadata --------------------------------------------------------------------------------

@pytest.mark.parametrize(("params", "message"), [
    ({"principal_id": "alice@contoso.com"}, "is not an object id"),
    ({"roles": ["Global Administrator"]}, "unknown role 'Global Administrator'"),
    ({"roles": []}, "at least 1 item"),
    ({"scope": "tenant"}, "expected resource, resource-group, subscription or an ARM scope id"),
    ({"principal": BAD}, "Extra inputs are not permitted"),
])
def test_invalid_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        ACTION.parse_params(params)


def test_defaults_roles_and_metadata() -> None:
    p = RevokeRoleAssignmentsParams()
    assert p.principal_id is None
    assert p.scope is None
    assert p.role_ids() == {OWNER, CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR, RBAC_ADMIN}
    assert (ACTION.role.name, ACTION.role.id) == ("Role Based Access Control Administrator", RBAC_ADMIN)
    assert "Microsoft.Authorization/roleAssignments/delete" in ACTION.permissions
    assert "subscription" in ACTION.resource_types
    schema = RevokeRoleAssignmentsParams.model_json_schema()
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())


def test_undo_recreates_and_undoes_the_recreate() -> None:
    change = plan(estate())[0]
    back = ACTION.undo(change)
    assert (back.operation, back.resource_id, back.before, back.after) == \
        ("create", change.resource_id, None, change.before)
    again = ACTION.undo(back)
    assert (again.operation, again.before, again.after) == ("delete", change.before, None)


# --- apply / verify / undo through the real authorization SDK against FakeArm ---------------------------

AUTHORIZATION_API_VERSION = "2022-04-01"  # role_assignments in azure-mgmt-authorization 4.0's profile


def live_state(arm: Any) -> Any:
    from remediator.azure.reader import LiveState

    return LiveState(arm.clients())


def live_plan(arm: Any, f: Finding | None = None, **params: Any) -> list[Change]:
    ctx = PlanContext(finding=f or finding(principal_id=BAD), state=live_state(arm))
    return ACTION.plan(ctx, ACTION.parse_params(params))


def seeded() -> list[dict[str, Any]]:
    return [d for d in estate() if not d["id"].startswith("/providers/")]  # the fake has no MG hierarchy


def test_plan_through_live_state_only_reads_and_equals_the_saved_plan(arm: Any) -> None:
    arm.load(seeded())
    changes = live_plan(arm)
    assert arm.writes == []
    assert names(changes) == [guid(1), guid(2), guid(4)]
    saved = ACTION.plan(PlanContext(finding=finding(principal_id=BAD), state=SavedState(seeded())),
                        ACTION.parse_params({}))
    assert [c.to_json() for c in changes] == [c.to_json() for c in saved]


def test_apply_deletes_by_id_verifies_and_undo_recreates(arm: Any) -> None:
    arm.load(seeded())
    changes = live_plan(arm)
    arm.reset_log()
    for c in changes:
        ACTION.apply(arm.clients(), c)
    assert [(w.method, w.path, w.query) for w in arm.writes] == \
        [("DELETE", c.resource_id, {"api-version": AUTHORIZATION_API_VERSION}) for c in changes]
    state = live_state(arm)
    assert [ACTION.verify(state, c) for c in changes] == [None, None, None]
    assert arm.get(changes[0].resource_id) is None
    assert arm.get(f"{SUB_SCOPE}/providers/Microsoft.Authorization/roleAssignments/{guid(7)}") is not None
    assert live_plan(arm) == []  # nothing privileged left for the principal

    arm.reset_log()
    undo = ACTION.undo(changes[0])
    result = ACTION.apply(arm.clients(), undo)
    (put,) = arm.writes
    assert (put.method, put.path) == ("PUT", changes[0].resource_id)
    assert put.query == {"api-version": AUTHORIZATION_API_VERSION}
    assert put.body == {"properties": {
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{OWNER}",
        "principalId": BAD, "principalType": "User"}}
    assert result.response is not None
    assert result.response["properties"]["principalId"] == BAD
    assert ACTION.verify(live_state(arm), undo) is None
    assert ACTION.verify(live_state(arm), changes[0]) == f"role assignment {guid(1)} still exists"


def test_undo_keeps_the_condition_of_a_conditional_assignment(arm: Any) -> None:
    condition = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:ContainerName] " \
                "StringEqualsIgnoreCase 'logs'"
    doc = assignment(guid(20), BAD, RBAC_ADMIN, RG_SCOPE, condition=condition, conditionVersion="2.0",
                     description="delegated admin")
    arm.load([doc])
    (change,) = live_plan(arm, finding(RG_SCOPE, principal_id=BAD))
    ACTION.apply(arm.clients(), change)
    arm.reset_log()
    ACTION.apply(arm.clients(), ACTION.undo(change))
    (put,) = arm.writes
    assert put.body["properties"]["condition"] == condition
    assert put.body["properties"]["conditionVersion"] == "2.0"
    assert put.body["properties"]["description"] == "delegated admin"
    assert ACTION.verify(live_state(arm), ACTION.undo(change)) is None


def test_verify_reports_what_differs(arm: Any) -> None:
    doc = assignment(guid(1), BAD, OWNER, SUB_SCOPE)
    recreate = Change(action=ACTION.name, resource_id=doc["id"], operation="create", before=None, after=doc)
    assert ACTION.verify(live_state(arm), recreate) == f"role assignment {guid(1)} does not exist"
    other = copy.deepcopy(doc)
    other["properties"]["roleDefinitionId"] = other["properties"]["roleDefinitionId"].replace(OWNER, READER)
    arm.add(other)
    assert ACTION.verify(live_state(arm), recreate) == \
        f"role assignment {guid(1)} has role {READER}, planned {OWNER}"


def test_api_errors_are_one_line_action_errors(arm: Any) -> None:
    arm.load(seeded())
    change = live_plan(arm)[0]
    text = apply_error(arm, ACTION, change, ("DELETE", "/roleAssignments/", 403), code="AuthorizationFailed",
                       message="The client 'x' does not have authorization to perform action\n"
                               "'Microsoft.Authorization/roleAssignments/delete'.")
    assert f"delete of role assignment {guid(1)} failed: 403 AuthorizationFailed: The client 'x'" in text
    arm.fail_next("PUT", "/roleAssignments/", 409, body={"error": {
        "code": "RoleAssignmentExists", "message": "The role assignment already exists."}})
    with pytest.raises(ActionError, match=r"create of role assignment .* 409 RoleAssignmentExists"):
        ACTION.apply(arm.clients(), ACTION.undo(change))


def test_apply_refuses_what_is_not_a_role_assignment(arm: Any) -> None:
    bogus = Change(action=ACTION.name, resource_id=VM_ID, operation="delete", before={}, after=None)
    with pytest.raises(ActionError, match="not a role assignment id"):
        ACTION.apply(arm.clients(), bogus)
    assert arm.requests == []
