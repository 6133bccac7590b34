"""FakeArm's PIM endpoints, caller identity, grant enforcement and propagation, through the real
``AuthorizationManagementClient`` (schedule requests at api 2020-10-01) and storage client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization.v2020_10_01.models import (
    RoleAssignmentScheduleRequest,
    RoleAssignmentScheduleRequestPropertiesScheduleInfo,
    RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
)
from azure.mgmt.storage.models import StorageAccountPropertiesUpdateParameters, StorageAccountUpdateParameters

from remediator.testing import FakeArm, FakeCredential
from remediator.testing.fake_arm import principal_token
from tests.support.builders import arm_fixture

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
RG = f"/subscriptions/{SUB}/resourceGroups/res3376"
ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/sto328"
OTHER_ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/other"
EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ROLE_GUID = "17d1049b-9a84-46fb-8f53-869881c3d3ab"  # Storage Account Contributor
ROLE = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLE_GUID}"
READER = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
_DISABLE = StorageAccountUpdateParameters(properties=StorageAccountPropertiesUpdateParameters(
    allow_blob_public_access=False))


def _account(rid: str = ACCOUNT) -> dict[str, Any]:
    doc = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    doc["id"], doc["name"] = rid, rid.rsplit("/", 1)[-1]
    doc["properties"]["allowBlobPublicAccess"] = True
    return doc


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load([_account(), _account(OTHER_ACCOUNT)])
        yield fake


def _request(request_type: str, *, principal: str = EXEC, role: str = ROLE, duration: str | None = "PT5M",
             start: datetime | None = None, linked: str | None = None) -> RoleAssignmentScheduleRequest:
    schedule = None
    if duration is not None:
        schedule = RoleAssignmentScheduleRequestPropertiesScheduleInfo(
            start_date_time=start, expiration=RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(
                type="AfterDuration", duration=duration))
    return RoleAssignmentScheduleRequest(principal_id=principal, role_definition_id=role, request_type=request_type,
                                         schedule_info=schedule, linked_role_eligibility_schedule_id=linked)


def _pim(arm: FakeArm, principal: str = BROKER) -> Any:
    return arm.clients(principal_id=principal).authorization(SUB).role_assignment_schedule_requests


def _patch(arm: FakeArm, principal: str | None = EXEC, account: str = "sto328") -> Any:
    client = arm.clients(principal_id=principal).storage(SUB)
    return client.storage_accounts.update("res3376", account, _DISABLE)


def _code(err: HttpResponseError) -> str | None:
    return err.error.code if err.error is not None else None


# -- schedule requests --------------------------------------------------------------------------------

def test_admin_assign_provisions_a_role_assignment_at_the_scope_with_an_expiry(arm: FakeArm) -> None:
    before = datetime.now(UTC)
    out = _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    assert out.status == "Provisioned"
    assert (out.scope, out.request_type, out.principal_id) == (ACCOUNT, "AdminAssign", EXEC)

    (grant,) = arm.pim_grants(EXEC)
    assert (grant.scope, grant.role_definition_id, grant.request_type) == (ACCOUNT, ROLE, "AdminAssign")
    assert grant.expires_at is not None
    assert timedelta(minutes=5) <= grant.expires_at - before < timedelta(minutes=5, seconds=5)
    listed = list(arm.clients().authorization(SUB).role_assignments.list_for_scope(
        ACCOUNT, filter=f"principalId eq '{EXEC}'"))
    assert [(ra.principal_id, ra.role_definition_id, ra.scope) for ra in listed] == [(EXEC, ROLE, ACCOUNT)]
    assert arm.get(grant.assignment_id) is not None
    assert arm.pim_request(out.name)["properties"]["status"] == "Provisioned"  # type: ignore[index]


def test_pim_requests_are_recorded_apart_from_resource_writes(arm: FakeArm) -> None:
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    (put,) = arm.writes
    assert (put.is_pim, put.principal) == (True, BROKER)
    assert arm.resource_writes == []
    _patch(arm)
    (write,) = arm.resource_writes
    assert (write.method, write.principal, write.is_pim) == ("PATCH", EXEC, False)


def test_the_schedule_ends_and_the_assignment_is_gone(arm: FakeArm) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign", start=start))
    assert arm.pim_grants(EXEC) == []
    (ended,) = arm.pim_grants(EXEC, active_only=False)
    assert ended.ended == "expired"
    assert arm.get(ended.assignment_id) is None


@pytest.mark.parametrize("duration", ["PT4M", "PT299S", "bogus"])
def test_durations_under_five_minutes_fail_the_expiration_rule(arm: FakeArm, duration: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign", duration=duration))
    assert err.value.status_code == 400
    assert _code(err.value) == "RoleAssignmentRequestPolicyValidationFailed"
    assert "ExpirationRule" in str(err.value)
    assert arm.pim_grants() == []


def test_a_second_assign_of_an_active_assignment_is_refused(arm: FakeArm) -> None:
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    assert (err.value.status_code, _code(err.value)) == (400, "RoleAssignmentExists")


def test_granted_becomes_provisioned_after_the_configured_polls(arm: FakeArm) -> None:
    arm.pim_outcome("Granted", after_polls=2)
    name = str(uuid.uuid4())
    assert _pim(arm).create(ACCOUNT, name, _request("AdminAssign")).status == "Granted"
    assert arm.pim_grants() == []
    assert _pim(arm).get(ACCOUNT, name).status == "Granted"
    assert _pim(arm).get(ACCOUNT, name).status == "Provisioned"
    assert len(arm.pim_grants(EXEC)) == 1
    assert _pim(arm).get(ACCOUNT, name).status == "Provisioned"


@pytest.mark.parametrize("status", ["PendingApproval", "Denied", "Failed"])
def test_queued_outcomes_apply_once_then_the_default(arm: FakeArm, status: str) -> None:
    arm.pim_outcome(status)
    name = str(uuid.uuid4())
    assert _pim(arm).create(ACCOUNT, name, _request("AdminAssign")).status == status
    assert _pim(arm).get(ACCOUNT, name).status == status
    assert arm.pim_grants() == []
    assert _pim(arm).create(OTHER_ACCOUNT, str(uuid.uuid4()), _request("AdminAssign")).status == "Provisioned"


def test_cancel_of_a_pending_request(arm: FakeArm) -> None:
    arm.pim_outcome("PendingApproval")
    name = str(uuid.uuid4())
    _pim(arm).create(ACCOUNT, name, _request("AdminAssign"))
    _pim(arm).cancel(ACCOUNT, name)
    assert _pim(arm).get(ACCOUNT, name).status == "Canceled"
    done = str(uuid.uuid4())
    _pim(arm).create(ACCOUNT, done, _request("AdminAssign"))
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).cancel(ACCOUNT, done)
    assert err.value.status_code == 400
    with pytest.raises(HttpResponseError) as missing:
        _pim(arm).get(ACCOUNT, str(uuid.uuid4()))
    assert missing.value.status_code == 404


def test_admin_remove_deletes_the_assignment(arm: FakeArm) -> None:
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    out = _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminRemove", duration=None))
    assert out.status == "Revoked"
    assert arm.pim_grants(EXEC) == []
    (removed,) = arm.pim_grants(EXEC, active_only=False)
    assert removed.ended == "removed"
    assert arm.get(removed.assignment_id) is None
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminRemove", duration=None))
    assert (err.value.status_code, _code(err.value)) == (400, "RoleAssignmentDoesNotExist")


def test_removal_within_five_minutes_is_refused_when_configured(arm: FakeArm) -> None:
    arm.refuse_early_removal()
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminRemove", duration=None))
    assert (err.value.status_code, _code(err.value)) == (400, "ActiveDurationTooShort")
    assert len(arm.pim_grants(EXEC)) == 1
    arm.refuse_early_removal(timedelta(0))
    assert _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminRemove", duration=None)).status == "Revoked"


def test_request_bodies_the_fake_does_not_implement_are_400(arm: FakeArm) -> None:
    with pytest.raises(HttpResponseError) as err:
        _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminExtend"))
    assert err.value.status_code == 400


# -- eligibility and self-activation -----------------------------------------------------------------

def test_eligibility_list_as_target_at_and_above_the_scope() -> None:
    with FakeArm(page_size=1) as arm:
        mine_rg = arm.add_eligibility(EXEC, ROLE, RG)
        mine_sub = arm.add_eligibility(EXEC, READER, f"/subscriptions/{SUB}")
        arm.add_eligibility(BROKER, ROLE, RG)  # someone else's
        mine_below = arm.add_eligibility(EXEC, ROLE, ACCOUNT)
        client = arm.clients(principal_id=EXEC).authorization(SUB).role_eligibility_schedule_instances

        got = {e.id for e in client.list_for_scope(RG, filter="asTarget()")}  # paged, 1 per page
        assert got == {mine_rg["id"], mine_sub["id"], mine_below["id"]}
        at_scope = {e.id for e in client.list_for_scope(RG, filter="asTarget() and atScope()")}
        assert at_scope == {mine_rg["id"], mine_sub["id"]}
        (inst,) = [e for e in client.list_for_scope(ACCOUNT, filter="asTarget()") if e.scope == ACCOUNT]
        assert (inst.role_definition_id, inst.principal_type) == (ROLE, "User")
        assert inst.role_eligibility_schedule_id == mine_below["properties"]["roleEligibilityScheduleId"]
        broker_view = arm.clients(principal_id=BROKER).authorization(SUB).role_eligibility_schedule_instances
        assert len(list(broker_view.list_for_scope(RG, filter="asTarget()"))) == 1
        assert list(arm.clients().authorization(SUB).role_eligibility_schedule_instances.list_for_scope(
            RG, filter="asTarget()")) == []  # an unidentified caller has none
        by_id = {e.principal_id for e in client.list_for_scope(RG, filter=f"principalId eq '{BROKER}'")}
        assert by_id == {BROKER}
        with pytest.raises(HttpResponseError) as err:
            list(client.list_for_scope(RG, filter="roleDefinitionId eq 'x'"))
        assert err.value.status_code == 400


def test_self_activate_needs_the_callers_eligibility_at_or_above_the_scope(arm: FakeArm) -> None:
    elig = arm.add_eligibility(EXEC, ROLE, RG)
    link = elig["properties"]["roleEligibilityScheduleId"]
    mine = _pim(arm, EXEC)

    with pytest.raises(HttpResponseError) as wrong_link:
        mine.create(ACCOUNT, str(uuid.uuid4()), _request("SelfActivate", linked=link + "x"))
    assert _code(wrong_link.value) == "RoleAssignmentRequestPolicyValidationFailed"
    assert "EligibilityRule" in str(wrong_link.value)
    with pytest.raises(HttpResponseError) as wrong_role:
        mine.create(ACCOUNT, str(uuid.uuid4()), _request("SelfActivate", role=READER, linked=link))
    assert "EligibilityRule" in str(wrong_role.value)
    with pytest.raises(HttpResponseError) as above:
        mine.create(f"/subscriptions/{SUB}", str(uuid.uuid4()), _request("SelfActivate", linked=link))
    assert "EligibilityRule" in str(above.value)
    with pytest.raises(HttpResponseError) as not_self:
        _pim(arm, BROKER).create(ACCOUNT, str(uuid.uuid4()), _request("SelfActivate", linked=link))
    assert not_self.value.status_code == 403

    out = mine.create(ACCOUNT, str(uuid.uuid4()), _request("SelfActivate", linked=link))
    assert (out.status, out.scope) == ("Provisioned", ACCOUNT)
    (grant,) = arm.pim_grants(EXEC)
    assert (grant.scope, grant.request_type) == (ACCOUNT, "SelfActivate")
    assert mine.create(ACCOUNT, str(uuid.uuid4()), _request("SelfDeactivate", duration=None)).status == "Revoked"
    assert arm.pim_grants(EXEC) == []


# -- enforcement and propagation ---------------------------------------------------------------------

def test_enforcement_403s_writes_without_a_covering_assignment(arm: FakeArm) -> None:
    arm.enforce_grants(EXEC, role_id=ROLE_GUID)
    with pytest.raises(HttpResponseError) as err:
        _patch(arm)
    assert (err.value.status_code, _code(err.value)) == (403, "AuthorizationFailed")
    assert "Microsoft.Storage/storageAccounts/write" in str(err.value)
    assert arm.get(ACCOUNT)["properties"]["allowBlobPublicAccess"] is True  # type: ignore[index]
    with pytest.raises(HttpResponseError):
        _patch(arm, principal=None)  # an unidentified caller counts as the executor
    _patch(arm, principal=BROKER)  # other principals are not the subject of enforcement

    arm.load([{"id": f"{RG}/providers/Microsoft.Authorization/roleAssignments/r1",
               "type": "Microsoft.Authorization/roleAssignments",
               "properties": {"roleDefinitionId": READER, "principalId": EXEC, "scope": RG}}])
    with pytest.raises(HttpResponseError):
        _patch(arm)  # a role, but not the required one
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    _patch(arm)
    with pytest.raises(HttpResponseError):
        _patch(arm, account="other")  # the grant covers only its resource
    arm.enforce_grants(None)
    _patch(arm, account="other")


def test_propagation_denies_the_next_n_writes_under_the_grant(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(requests=2)
    _patch(arm)  # no grant yet: no window
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    _patch(arm, account="other")  # outside the grant's scope
    for _ in range(2):
        with pytest.raises(HttpResponseError) as err:
            _patch(arm)
        assert (err.value.status_code, _code(err.value)) == (403, "AuthorizationFailed")
        assert "refresh your credentials" in str(err.value)
    _patch(arm)
    assert [r.status for r in arm.resource_writes] == [200, 200, 403, 403, 200]


def test_propagation_for_some_seconds(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(seconds=0.3)
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    with pytest.raises(HttpResponseError):
        _patch(arm)
    time.sleep(0.35)
    _patch(arm)


def test_propagation_until_a_token_issued_after_the_grant(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(fresh_token=True)
    old = arm.clients(credential=FakeCredential(principal_token(EXEC, 1))).storage(SUB)
    old.storage_accounts.get_properties("res3376", "sto328")  # the token is presented before the grant
    _pim(arm).create(ACCOUNT, str(uuid.uuid4()), _request("AdminAssign"))
    params = _DISABLE
    for _ in range(3):
        with pytest.raises(HttpResponseError):
            old.storage_accounts.update("res3376", "sto328", params)
    new = arm.clients(credential=FakeCredential(principal_token(EXEC, 2))).storage(SUB)
    new.storage_accounts.update("res3376", "sto328", params)
    tokens = [r.headers["Authorization"] for r in arm.resource_writes]
    assert tokens == [f"Bearer {principal_token(EXEC, 1)}"] * 3 + [f"Bearer {principal_token(EXEC, 2)}"]
    assert {r.principal for r in arm.resource_writes} == {EXEC}


def test_credential_clients_use_azure_cores_bearer_policy(arm: FakeArm) -> None:
    cred = FakeCredential(principal_token(EXEC, "a"))
    clients = arm.clients(credential=cred)
    clients.storage(SUB).storage_accounts.get_properties("res3376", "sto328")
    clients.storage(SUB).storage_accounts.get_properties("res3376", "sto328")
    assert cred.scopes == [f"{arm.base_url}/.default"]  # asked once, then cached by the policy
    assert [r.principal for r in arm.requests] == [EXEC, EXEC]
