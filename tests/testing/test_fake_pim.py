"""FakeArm's PIM eligibility, schedule instances and role settings through the real authorization SDK
(api 2020-10-01), and Resource Graph's ``authorizationresources`` with ``has_any``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.v2020_10_01.models import (
    RoleAssignmentScheduleRequest,
    RoleAssignmentScheduleRequestPropertiesScheduleInfo,
    RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
    RoleEligibilityScheduleRequest,
    RoleEligibilityScheduleRequestPropertiesScheduleInfo,
    RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration,
)

from remediator.azure.graph import Graph, Scope
from remediator.findings.roles import CONTRIBUTOR, OWNER
from remediator.testing import FakeArm

SUB = "0e3f6a1b-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
SCOPE = f"/subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/w"
USER = "11111111-2222-4333-8444-555555555555"
APP = "66666666-7777-4888-8999-000000000000"
ROLE = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}"


def standing(arm: FakeArm, principal: str, kind: str) -> dict[str, Any]:
    doc = arm.assign_role(principal, CONTRIBUTOR, SCOPE)
    doc["properties"]["principalType"] = kind
    arm.add(doc)
    return doc


def eligibility(request_type: str = "AdminAssign", principal: str = USER, duration: str = "P90D") -> Any:
    return RoleEligibilityScheduleRequest(
        principal_id=principal, role_definition_id=ROLE, request_type=request_type,
        schedule_info=RoleEligibilityScheduleRequestPropertiesScheduleInfo(
            start_date_time=datetime.now(UTC),
            expiration=RoleEligibilityScheduleRequestPropertiesScheduleInfoExpiration(type="AfterDuration",
                                                                                      duration=duration)))


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        yield fake


def test_an_eligibility_is_made_listed_and_removed(arm: FakeArm) -> None:
    standing(arm, USER, "User")
    client = arm.clients().authorization(SUB)
    made = client.role_eligibility_schedule_requests.create(SCOPE, "5f0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
                                                            eligibility())
    assert (made.status, made.principal_type, made.request_type) == ("Provisioned", "User", "AdminAssign")
    listed = list(client.role_eligibility_schedules.list_for_scope(SCOPE, filter=f"principalId eq '{USER}'"))
    assert [(s.scope, s.role_definition_id, s.status) for s in listed] == [(SCOPE, ROLE, "Provisioned")]
    assert listed[0].end_date_time is not None
    assert listed[0].end_date_time - listed[0].start_date_time == timedelta(days=90)
    # what pim-activate lists, too
    assert len(list(client.role_eligibility_schedule_instances.list_for_scope(SCOPE))) == 1
    # above the scope it is listed; atScope() at the subscription leaves it out
    assert len(list(client.role_eligibility_schedules.list_for_scope(f"/subscriptions/{SUB}"))) == 1
    assert list(client.role_eligibility_schedules.list_for_scope(f"/subscriptions/{SUB}", filter="atScope()")) == []
    with pytest.raises(HttpResponseError, match="RoleAssignmentExists"):
        client.role_eligibility_schedule_requests.create(SCOPE, "6f0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
                                                         eligibility())
    removed = client.role_eligibility_schedule_requests.create(SCOPE, "7f0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
                                                               eligibility("AdminRemove"))
    assert removed.status == "Revoked"
    assert arm.pim.eligibilities(USER) == []
    with pytest.raises(HttpResponseError, match="RoleAssignmentDoesNotExist"):
        client.role_eligibility_schedule_requests.create(SCOPE, "8f0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
                                                         eligibility("AdminRemove"))


def test_a_service_principal_cannot_be_eligible_and_a_long_eligibility_breaks_the_role_setting(arm: FakeArm) -> None:
    standing(arm, APP, "ServicePrincipal")
    client = arm.clients().authorization(SUB)
    with pytest.raises(HttpResponseError, match="only users and groups can activate"):
        client.role_eligibility_schedule_requests.create(SCOPE, "9f0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f",
                                                         eligibility(principal=APP))
    standing(arm, USER, "User")
    arm.pim.set_policy(f"/subscriptions/{SUB}", CONTRIBUTOR, max_eligibility="P30D")
    with pytest.raises(HttpResponseError, match="ExpirationRule"):
        client.role_eligibility_schedule_requests.create(SCOPE, "af0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f", eligibility())
    assert arm.pim.eligibilities() == []


def test_admin_update_gives_the_active_assignment_an_end_and_the_instances_show_it(arm: FakeArm) -> None:
    doc = standing(arm, APP, "ServicePrincipal")
    client = arm.clients().authorization(SUB)

    def instance() -> Any:
        (found,) = [i for i in client.role_assignment_schedule_instances.list_for_scope(SCOPE)
                    if i.origin_role_assignment_id == doc["id"]]
        return found

    assert (instance().assignment_type, instance().end_date_time) == ("Assigned", None)
    body = RoleAssignmentScheduleRequest(
        principal_id=APP, role_definition_id=ROLE, request_type="AdminUpdate",
        schedule_info=RoleAssignmentScheduleRequestPropertiesScheduleInfo(
            start_date_time=datetime.now(UTC),
            expiration=RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(type="AfterDuration",
                                                                                     duration="P30D")))
    out = client.role_assignment_schedule_requests.create(SCOPE, "bf0c0c8e-1b2a-4c3d-9e8f-7a6b5c4d3e2f", body)
    assert out.status == "Provisioned"
    assert instance().end_date_time is not None
    assert arm.get(doc["id"]) is not None  # updated in place, not re-created


def test_role_settings_are_listed_per_role_shaped_as_the_spec_example(arm: FakeArm) -> None:
    arm.pim.set_policy(f"/subscriptions/{SUB}", CONTRIBUTOR, approval=True, approvers=("ml-leads",),
                       max_activation="PT4H")
    client = arm.clients().authorization(SUB)
    found = {p.role_definition_id.rsplit("/", 1)[-1]: p for p in client.role_management_policy_assignments
             .list_for_scope(SCOPE)}
    assert {CONTRIBUTOR, OWNER} <= set(found)  # every privileged role has settings (defaults where none were set)
    rules = {r.id: r for r in found[CONTRIBUTOR].effective_rules}
    assert rules["Approval_EndUser_Assignment"].setting.is_approval_required is True
    assert rules["Expiration_EndUser_Assignment"].maximum_duration == "PT4H"
    assert rules["Expiration_Admin_Eligibility"].maximum_duration == "P365D"


def test_resource_graph_lists_role_assignments_of_the_named_roles(arm: FakeArm) -> None:
    standing(arm, USER, "User")
    arm.assign_role(APP, "acdd72a7-3385-48ef-bd42-f606fba81ae7", SCOPE)  # Reader: not privileged
    rows = list(Graph(arm.clients()).query(
        "authorizationresources | where type =~ 'microsoft.authorization/roleassignments' and "
        f"properties.roleDefinitionId has_any ('{OWNER}', '{CONTRIBUTOR}') | order by id asc", Scope()))
    assert [r["properties"]["principalId"] for r in rows] == [USER]
    assert rows[0]["type"] == "microsoft.authorization/roleassignments"
    # has_any matches whole terms, not a part of one
    assert list(Graph(arm.clients()).query(
        "authorizationresources | where properties.roleDefinitionId has_any ('b24988ac-6180')", Scope())) != []
    assert list(Graph(arm.clients()).query(
        "authorizationresources | where properties.roleDefinitionId has_any ('24988ac')", Scope())) == []
