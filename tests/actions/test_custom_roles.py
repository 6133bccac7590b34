"""remediator's custom roles (remediator/actions/custom_roles.py): deterministic ids, exactly the operations
their actions write, resolved through the settings, checked by every plan (refused, never widened), and granted
through PIM as themselves (FakeArm refuses a role that does not exist at the scope)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.rest import HttpRequest

from remediator.actions import REGISTRY
from remediator.actions.base import CustomRole, PlanContext
from remediator.actions.custom_roles import (
    CUSTOM_ROLES,
    SYNAPSE_WORKSPACE_SETTINGS,
    NeedsCustomRole,
    definition_document,
    definition_id,
)
from remediator.azure.errors import Backoff
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState
from remediator.errors import ActionError
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm
from tests.support.builders import make_finding
from tests.support.contract import CASES, SUB, SYNAPSE_WS

EXECUTOR = "7a0c4e2b-91d3-4f6a-8b5c-2e3d4f5a6b7c"
BROKER = "c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e0f"
OWN_ROLE = "0c7a9e51-3f2b-4d6a-8e1c-5b9d2f4a6c8e"  # a deployment's own role for Synapse
CUSTOM_ACTIONS = sorted(n for n, a in REGISTRY.items() if isinstance(a.role, CustomRole))


def _synapse_docs(*, role: bool = True) -> list[dict[str, Any]]:
    docs = CASES["synapse.disable-public-network-access"].docs()
    return docs if role else [d for d in docs if "roleDefinitions" not in d["id"]]


def _plan(docs: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> list[Any]:
    action = REGISTRY["synapse.disable-public-network-access"]
    ctx = PlanContext(finding=make_finding(SYNAPSE_WS, kind="policy", type="38d8df46-cf4e-4073-8e03-48c24b29de0d"),
                      state=SavedState(docs), settings=settings or {})
    return action.plan(ctx, action.parse_params({"refuse_if_everyone_cut_off": True}))


def test_each_id_is_the_uuid5_of_its_key_and_each_role_holds_exactly_its_actions_operations() -> None:
    assert CUSTOM_ACTIONS, "no action uses a custom role"
    for key, role in CUSTOM_ROLES.items():
        assert role.id == str(uuid.uuid5(uuid.NAMESPACE_URL, f"remediator:custom-role:{key}"))
        users = [REGISTRY[n] for n in CUSTOM_ACTIONS if REGISTRY[n].role.id == role.id]
        assert users, f"{key}: no action grants it"
        assert sorted({op for a in users for op in a.permissions}) == sorted(role.actions), key
        assert all(isinstance(a, NeedsCustomRole) for a in users), key
        assert "*" not in "".join(role.actions)
        assert "Microsoft.Authorization" not in "".join(role.actions)
    assert len({r.name for r in CUSTOM_ROLES.values()}) == len(CUSTOM_ROLES)  # roleName is unique in a tenant


def test_a_plan_names_the_custom_role_it_will_grant() -> None:
    changes = _plan(_synapse_docs())
    assert [c.roles for c in changes] == [((SYNAPSE_WORKSPACE_SETTINGS.id, SYNAPSE_WORKSPACE_SETTINGS.name),)]
    need = REGISTRY["synapse.disable-public-network-access"].grants(changes[0])
    assert [(n.scope, n.role.id) for n in need] == [(SYNAPSE_WS, SYNAPSE_WORKSPACE_SETTINGS.id)]


def test_without_the_role_definition_the_plan_refuses_naming_the_role_the_setting_and_the_fix() -> None:
    with pytest.raises(ActionError) as e:
        _plan(_synapse_docs(role=False))
    text = str(e.value)
    assert text.count("\n") == 0
    for words in ("refused: custom role 'remediator Synapse Workspace Settings Writer'", SYNAPSE_WORKSPACE_SETTINGS.id,
                  "custom_roles.synapse-workspace-settings", f"not found at /subscriptions/{SUB}",
                  "infra/custom-roles.bicep", "REMEDIATOR_CUSTOM_ROLES", "never a broader role",
                  "az role definition list"):
        assert words in text, (words, text)


@pytest.mark.parametrize(("change", "says"), [
    ({"assignableScopes": ["/subscriptions/9d3f1c2e-0b4a-4e8f-a1d2-6c7b8e9f0a13"]}, "not assignable at"),
    ({"permissions": [{"actions": ["Microsoft.Synapse/workspaces/read"], "notActions": []}]},
     "lacks Microsoft.Synapse/workspaces/write"),
    ({"permissions": [{"actions": ["Microsoft.Synapse/*"], "notActions": ["Microsoft.Synapse/workspaces/write"]}]},
     "lacks Microsoft.Synapse/workspaces/write"),
])
def test_a_role_that_cannot_make_the_write_there_is_refused(change: dict[str, Any], says: str) -> None:
    docs = _synapse_docs()
    next(d for d in docs if "roleDefinitions" in d["id"])["properties"].update(change)
    with pytest.raises(ActionError, match=says):
        _plan(docs)


def test_a_management_group_scope_and_a_wildcard_role_are_taken() -> None:
    docs = _synapse_docs()
    role = next(d for d in docs if "roleDefinitions" in d["id"])
    role["properties"].update(assignableScopes=["/providers/Microsoft.Management/managementGroups/data"],
                              permissions=[{"actions": ["Microsoft.Synapse/workspaces/*"], "notActions": []}])
    assert _plan(docs)


def test_a_compliant_resource_needs_no_role() -> None:
    docs = _synapse_docs(role=False)
    docs[0]["properties"]["publicNetworkAccess"] = "Disabled"
    assert _plan(docs) == []


def test_the_settings_map_a_role_to_the_deployments_own_and_nothing_falls_back() -> None:
    own = SYNAPSE_WORKSPACE_SETTINGS.mapped({SYNAPSE_WORKSPACE_SETTINGS.key: OWN_ROLE})
    docs = [*_synapse_docs(), definition_document(own, [f"/subscriptions/{SUB}"])]
    settings = {"custom_roles": {"synapse-workspace-settings": OWN_ROLE}}
    changes = _plan(docs, settings)
    assert changes[0].roles == ((OWN_ROLE, SYNAPSE_WORKSPACE_SETTINGS.name),)
    assert [n.role.id for n in REGISTRY["synapse.disable-public-network-access"].grants(changes[0])] == [OWN_ROLE]
    undo = REGISTRY["synapse.disable-public-network-access"].undo(changes[0])
    assert [n.role.id for n in REGISTRY["synapse.disable-public-network-access"].grants(undo)] == [OWN_ROLE]
    # mapped to a role that does not exist: refused, though the shipped role exists
    with pytest.raises(ActionError, match=f"{OWN_ROLE}, custom_roles.synapse-workspace-settings\\) is not found"):
        _plan(_synapse_docs(), settings)


def _elevator(arm: FakeArm) -> PimAssignElevator:
    return PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXECUTOR,
                             sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0,
                             propagation_backoff=Backoff(initial=0.01, cap=0.02))


def test_pim_grants_the_custom_role_at_the_resource_and_the_executor_holds_exactly_its_operations() -> None:
    action = REGISTRY["synapse.disable-public-network-access"]
    with FakeArm() as arm:
        arm.load(_synapse_docs())
        ctx = PlanContext(finding=make_finding(SYNAPSE_WS, kind="policy", type="38d8df46-cf4e-4073-8e03-48c24b29de0d"),
                          state=LiveState(arm.clients()))
        change = action.plan(ctx, action.parse_params({}))[0]
        elevator = _elevator(arm)
        grant = elevator.elevate(action=action, change=change, ticket=Ticket(remediation_id="rem-1"))
        try:
            assert (grant.status, grant.role_id, grant.role_name, grant.scope) == (
                "Provisioned", SYNAPSE_WORKSPACE_SETTINGS.id, SYNAPSE_WORKSPACE_SETTINGS.name, SYNAPSE_WS)
            held = arm.pim_grants(EXECUTOR)
            assert [(g.role_definition_id, g.scope) for g in held] == [
                (definition_id(SYNAPSE_WORKSPACE_SETTINGS, SUB), SYNAPSE_WS)]
            executor = arm.clients(principal_id=EXECUTOR)
            answer = executor.resources(SUB).send_request(HttpRequest(
                "GET", f"{executor.base_url}{SYNAPSE_WS}/providers/Microsoft.Authorization/permissions",
                params={"api-version": "2022-04-01"}))
            allowed = [a for entry in answer.json()["value"] for a in entry["actions"]]
            assert sorted(allowed) == sorted(SYNAPSE_WORKSPACE_SETTINGS.actions)  # no more than the role's
        finally:
            elevator.release(grant)
        assert arm.pim_grants(EXECUTOR) == []


def test_a_role_deleted_after_approval_fails_the_grant_with_the_fix_and_nothing_is_written() -> None:
    action = REGISTRY["synapse.disable-public-network-access"]
    with FakeArm() as arm:
        arm.load(_synapse_docs())
        ctx = PlanContext(finding=make_finding(SYNAPSE_WS, kind="policy", type="38d8df46-cf4e-4073-8e03-48c24b29de0d"),
                          state=LiveState(arm.clients()))
        change = action.plan(ctx, action.parse_params({}))[0]
        assert arm.remove(definition_id(SYNAPSE_WORKSPACE_SETTINGS, SUB))
        with pytest.raises(ActionError) as e:
            _elevator(arm).elevate(action=action, change=change, ticket=Ticket(remediation_id="rem-1"))
        text = str(e.value)
        for words in ("400 RoleDefinitionDoesNotExist", "nothing was applied",
                      "custom_roles.synapse-workspace-settings", "infra/custom-roles.bicep", "never a broader role"):
            assert words in text, (words, text)
        assert arm.resource_writes == []
        assert arm.pim_grants(EXECUTOR, active_only=False) == []
        assert (arm.get(SYNAPSE_WS) or {})["properties"]["publicNetworkAccess"] == "Enabled"
