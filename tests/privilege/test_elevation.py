"""Privilege strategies against FakeArm with the real SDK clients: the PIM requests' exact bodies and
statuses, the order of grant, write and release, propagation retries (tenacity) and their bounds,
and which errors are left to azure-core's own retry policy. (The retry policy and the fresh-token
credential themselves: tests/azure/test_errors.py, tests/azure/test_credentials.py.)"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.actions.base import REGISTRY, Action, ApplyResult, GrantNeed
from remediator.actions.change import Change, grant_scope
from remediator.azure.credentials import FreshTokenCredential
from remediator.azure.errors import Backoff
from remediator.azure.pace import DEFAULT_MAX_RETRIES
from remediator.errors import ActionError, ConfigError
from remediator.privilege.elevation import (
    JUSTIFICATION_MAX,
    ElevationSettings,
    Grant,
    PimActivateElevator,
    PimAssignElevator,
    Release,
    StandingElevator,
    Ticket,
    justification,
    make_elevator,
)
from remediator.testing import FakeArm, FakeCredential
from remediator.testing.fake_arm import Recorded, principal_token
from tests.support.builders import arm_fixture
from tests.support.engine import MEMBERS, make_world, sample

SUB = "3f5e6c1a-7b2d-4c8e-9a10-5d2f8b7c6e41"
RG = f"/subscriptions/{SUB}/resourceGroups/res3376"
ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/sto328"
EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ACTION = REGISTRY["storage.disable-public-blob-access"]
ROLE_DEF = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ACTION.role.id}"
READER = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
FAST = Backoff(initial=0.01, cap=0.04)
ACCOUNT_PATH = "storageaccounts/sto328"
IN_PROGRESS = {"error": {"code": "AnotherOperationInProgress",
                         "message": "Operation 'update' is not allowed: another operation is in progress."}}


def _account() -> dict[str, Any]:
    doc = arm_fixture("storage__2023-05-01__StorageAccountUpdate.json")
    doc["id"], doc["name"] = ACCOUNT, "sto328"
    doc["properties"]["allowBlobPublicAccess"] = True
    return doc


def _change() -> Change:
    before = _account()
    after = copy.deepcopy(before)
    after["properties"]["allowBlobPublicAccess"] = False
    return Change(action=ACTION.name, resource_id=ACCOUNT, operation="update", before=before, after=after)


def _ticket() -> Ticket:
    return Ticket(remediation_id="rem-7f3a", fingerprint="sha256:" + "ab" * 32, approvers=("U0APPROVE1", "U0APPROVE2"))


@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.add(_account())
        fake.enforce_grants(EXEC, role_id=ACTION.role.id)
        yield fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _assign(arm: FakeArm, sleeps: Sleeps | None = None, **kwargs: Any) -> PimAssignElevator:
    kwargs.setdefault("poll_interval", 0.01)
    kwargs.setdefault("poll_timeout", 1.0)
    kwargs.setdefault("propagation_backoff", FAST)
    return PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                             sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)


def _fresh_credential() -> tuple[FreshTokenCredential, list[str]]:
    """The executor's credential: each new inner credential issues a new token."""
    issued: list[str] = []
    counter = itertools.count(1)

    def factory() -> FakeCredential:
        issued.append(principal_token(EXEC, next(counter)))
        return FakeCredential(issued[-1])

    return FreshTokenCredential(factory), issued


def _engine(elevator: Any, clients: Any, change: Change | None = None) -> tuple[Grant, ApplyResult | Exception,
                                                                                 Release | None]:
    """What the engine does for one change: elevate, run the write, release in a finally."""
    change = change or _change()
    grant = elevator.elevate(action=ACTION, change=change, ticket=_ticket())
    outcome: ApplyResult | Exception
    try:
        outcome = elevator.run(grant, lambda: ACTION.apply(clients, change), clients=clients)
    except ActionError as e:
        outcome = e
    finally:
        released = elevator.release(grant)
    return grant, outcome, released


def _pim_puts(arm: FakeArm) -> list[Recorded]:
    return [r for r in arm.requests if r.is_pim and r.method == "PUT"]


def _index(arm: FakeArm, pred: Callable[[Recorded], bool]) -> list[int]:
    return [i for i, r in enumerate(arm.requests) if pred(r)]


# -- pim-assign ---------------------------------------------------------------------------------------

def test_pim_assign_request_body(arm: FakeArm) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    elevator = _assign(arm, clock=lambda: now)
    grant = elevator.elevate(action=ACTION, change=_change(), ticket=_ticket())

    (put,) = _pim_puts(arm)
    scope, _, name = put.path.rpartition("/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/")
    assert scope == ACCOUNT
    assert put.query["api-version"] == "2020-10-01"
    assert put.principal == BROKER
    body = copy.deepcopy(put.body)
    start = body["properties"]["scheduleInfo"].pop("startDateTime")
    assert datetime.fromisoformat(start) == now
    assert body == {"properties": {
        "principalId": EXEC,
        "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                            "17d1049b-9a84-46fb-8f53-869881c3d3ab",
        "requestType": "AdminAssign",
        "scheduleInfo": {"expiration": {"type": "AfterDuration", "duration": "PT5M"}},
        "justification": f"remediator rem-7f3a: storage.disable-public-blob-access on {ACCOUNT}; plan sha256:"
                         + "ab" * 32 + "; approved by U0APPROVE1, U0APPROVE2",
        "ticketInfo": {"ticketNumber": "rem-7f3a", "ticketSystem": "remediator"},
    }}
    assert grant == Grant(strategy="pim-assign", role_name="Storage Account Contributor", role_id=ACTION.role.id,
                          scope=ACCOUNT, principal_id=EXEC, request_id=name, status="Provisioned",
                          expires_at=now + timedelta(minutes=5))
    assert grant.audit()["request_id"] == name
    assert grant.audit()["status"] == "Provisioned"


def test_grant_then_write_then_release_under_enforcement(arm: FakeArm) -> None:
    executor = arm.clients(principal_id=EXEC)
    grant, outcome, released = _engine(_assign(arm), executor)

    assert isinstance(outcome, ApplyResult)
    assert arm.get(ACCOUNT)["properties"]["allowBlobPublicAccess"] is False  # type: ignore[index]
    assign, remove = _pim_puts(arm)
    assert (assign.body["properties"]["requestType"], remove.body["properties"]["requestType"]) == (
        "AdminAssign", "AdminRemove")
    (write,) = arm.resource_writes
    assert (write.method, write.path, write.status, write.principal) == ("PATCH", ACCOUNT, 200, EXEC)
    first_write = _index(arm, lambda r: r.is_write and not r.is_pim)[0]
    assert _index(arm, lambda r: r is assign)[0] < first_write < _index(arm, lambda r: r is remove)[0]

    (granted,) = arm.pim_grants(EXEC, active_only=False)
    assert granted.scope == grant.scope == ACCOUNT
    assert granted.role_definition_id == ROLE_DEF
    assert granted.ended == "removed"
    assert remove.path.startswith(ACCOUNT + "/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/")
    assert remove.body["properties"]["principalId"] == EXEC
    assert remove.body["properties"]["roleDefinitionId"] == ROLE_DEF
    assert released == Release(strategy="pim-assign", scope=ACCOUNT, request_id=remove.path.rsplit("/", 1)[-1],
                               status="Revoked")


def test_no_write_succeeds_without_the_grant(arm: FakeArm) -> None:
    with pytest.raises(ActionError, match="403 AuthorizationFailed"):
        ACTION.apply(arm.clients(principal_id=EXEC), _change())
    (write,) = arm.resource_writes
    assert write.status == 403
    assert arm.get(ACCOUNT)["properties"]["allowBlobPublicAccess"] is True  # type: ignore[index]


def test_release_is_attempted_when_apply_fails(arm: FakeArm) -> None:
    arm.fail_next("PATCH", ACCOUNT_PATH, 400, {"error": {"code": "InvalidValuesForRequestParameters",
                                                         "message": "Values for request parameters are invalid."}})
    _, outcome, released = _engine(_assign(arm), arm.clients(principal_id=EXEC))

    assert isinstance(outcome, ActionError)
    assert "400 InvalidValuesForRequestParameters" in str(outcome)
    methods = [(r.method, r.is_pim) for r in arm.requests if r.is_write]
    assert methods == [("PUT", True), ("PATCH", False), ("PUT", True)]
    assert released is not None
    assert released.status == "Revoked"
    assert arm.pim_grants(EXEC) == []


def test_release_too_soon_is_logged_and_left_to_expire(arm: FakeArm, caplog: pytest.LogCaptureFixture) -> None:
    arm.refuse_early_removal()
    caplog.set_level(logging.INFO, logger="remediator.elevation")
    grant, outcome, released = _engine(_assign(arm), arm.clients(principal_id=EXEC))

    assert isinstance(outcome, ApplyResult)
    assert released is not None
    assert released.status == "LeftToExpire"
    assert "400 ActiveDurationTooShort" in released.detail
    assert grant.expires_at is not None
    assert grant.expires_at.isoformat() in released.detail
    assert any("ActiveDurationTooShort" in r.getMessage() and "expires at" in r.getMessage() for r in caplog.records)
    (active,) = arm.pim_grants(EXEC)
    assert active.scope == ACCOUNT


def test_release_failure_of_any_kind_never_raises(arm: FakeArm, caplog: pytest.LogCaptureFixture) -> None:
    elevator = _assign(arm)
    grant = elevator.elevate(action=ACTION, change=_change(), ticket=_ticket())
    arm.fail_next("PUT", "roleassignmentschedulerequests", 500)
    released = elevator.release(grant)
    assert released is not None
    assert released.status == "LeftToExpire"
    assert "500 InternalServerError" in released.detail
    assert any(r.levelno == logging.WARNING and "failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", ["PendingApproval", "Denied", "Failed", "Canceled", "TimedOut", "Revoked"])
def test_refused_requests_raise_and_nothing_is_applied(arm: FakeArm, status: str) -> None:
    arm.pim_outcome(status)
    elevator = _assign(arm)
    with pytest.raises(ActionError) as err:
        _engine(elevator, arm.clients(principal_id=EXEC))
    (put,) = _pim_puts(arm)
    name = put.path.rsplit("/", 1)[-1]
    message = str(err.value)
    assert f"PIM request {name}" in message
    assert f"is {status}" in message
    assert "nothing was applied" in message
    assert "\n" not in message
    assert arm.resource_writes == []
    assert arm.pim_grants() == []
    cancels = [r for r in arm.requests if r.method == "POST" and r.path.endswith(f"{name}/cancel")]
    assert len(cancels) == (1 if status == "PendingApproval" else 0)
    if status == "PendingApproval":
        assert arm.pim_request(name)["properties"]["status"] == "Canceled"  # type: ignore[index]
        assert "requires approval" in message


def test_granted_is_polled_until_provisioned(arm: FakeArm) -> None:
    arm.pim_outcome("Granted", after_polls=3)
    sleeps = Sleeps()
    grant, outcome, _ = _engine(_assign(arm, sleeps, poll_interval=0.25), arm.clients(principal_id=EXEC))
    assert grant.status == "Provisioned"
    assert isinstance(outcome, ApplyResult)
    polls = [r for r in arm.requests if r.is_pim and r.method == "GET"]
    assert len(polls) == 3
    assert sleeps == [0.25, 0.25, 0.25]


def test_granted_with_an_active_assignment_counts_as_granted(arm: FakeArm) -> None:
    arm.pim_outcome("Granted", after_polls=1000)
    seeded: list[str] = []

    def sleep(seconds: float) -> None:  # while remediator waits, PIM's assignment becomes active
        if not seeded:
            seeded.append(f"{ACCOUNT}/providers/Microsoft.Authorization/roleAssignments/pim1")
            arm.add({"id": seeded[0], "type": "Microsoft.Authorization/roleAssignments",
                     "properties": {"roleDefinitionId": ROLE_DEF, "principalId": EXEC, "scope": ACCOUNT}})

    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                                 poll_interval=0.01, sleep=sleep)
    grant = elevator.elevate(action=ACTION, change=_change(), ticket=_ticket())
    assert grant.status == "Granted"
    assert grant.request_id is not None
    listed = [r for r in arm.requests if r.path.lower().endswith("/microsoft.authorization/roleassignments")]
    assert [r.query["$filter"] for r in listed] == [f"principalId eq '{EXEC}'"] * 2


def test_an_unknown_status_is_polled_like_one_in_flight(arm: FakeArm, caplog: pytest.LogCaptureFixture) -> None:
    arm.pim_outcome("SomethingNew", after_polls=2)
    grant = _assign(arm).elevate(action=ACTION, change=_change(), ticket=_ticket())
    assert grant.status == "Provisioned"
    assert any("unknown status 'SomethingNew'" in r.getMessage() for r in caplog.records)


def test_a_request_still_in_flight_at_the_timeout_is_canceled(arm: FakeArm) -> None:
    arm.pim_outcome("Granted", after_polls=1000)
    frozen = datetime.now(UTC)
    with pytest.raises(ActionError, match=r"still Granted after 0\.05s; canceled"):
        _assign(arm, poll_interval=0.01, poll_timeout=0.05, clock=lambda: frozen).elevate(
            action=ACTION, change=_change(), ticket=_ticket())
    assert len([r for r in arm.requests if r.is_pim and r.method == "GET"]) == 5  # a frozen clock: the count bounds it
    assert [r.path.rsplit("/", 1)[-1] for r in arm.requests if r.method == "POST"] == ["cancel"]
    assert arm.resource_writes == []


def test_a_failing_create_raises_with_the_arm_error(arm: FakeArm) -> None:
    arm.fail_next("PUT", "roleassignmentschedulerequests", 403)
    with pytest.raises(ActionError, match=r"PIM AdminAssign request .* failed: 403 AuthorizationFailed"):
        _assign(arm).elevate(action=ACTION, change=_change(), ticket=_ticket())


def test_an_assignment_already_active_is_used_and_kept(arm: FakeArm) -> None:
    arm.refuse_early_removal()
    elevator = _assign(arm)
    first, _, released = _engine(elevator, arm.clients(principal_id=EXEC))
    assert released is not None
    assert released.status == "LeftToExpire"
    second, outcome, kept = _engine(elevator, arm.clients(principal_id=EXEC))

    assert (first.status, second.status) == ("Provisioned", "AlreadyActive")
    assert second.request_id is not None  # the request PIM refused, named in the trail
    assert second.request_id != first.request_id
    assert isinstance(outcome, ApplyResult)
    assert kept is not None
    assert kept.status == "Kept"
    assert kept.grant_request_id == second.request_id
    kinds = [r.body["properties"]["requestType"] for r in _pim_puts(arm)]
    assert kinds == ["AdminAssign", "AdminRemove", "AdminAssign"]  # no removal of an assignment not ours
    assert len(arm.pim_grants(EXEC)) == 1


def test_a_request_asked_again_by_its_recorded_name_is_resumed_as_this_changes_grant(arm: FakeArm) -> None:
    """A retry after a crash asks under the name it recorded before the first ask: PIM is read, not
    asked twice, and the grant is this change's own (released as usual), never "AlreadyActive"."""
    elevator = _assign(arm)
    ticket = replace(_ticket(), request_id="6b1f0c8e-2d4a-4e7b-9c3f-1a2b3c4d5e6f")
    first = elevator.elevate(action=ACTION, change=_change(), ticket=ticket)  # … and the worker dies
    again = elevator.elevate(action=ACTION, change=_change(), ticket=ticket)
    assert (first.request_id, again.request_id) == (ticket.request_id, ticket.request_id)
    assert (first.status, again.status) == ("Provisioned", "Provisioned")
    assert [r.path.rsplit("/", 1)[-1] for r in _pim_puts(arm)] == [ticket.request_id]  # one AdminAssign
    released = elevator.release(again)
    assert released is not None
    assert (released.status, released.grant_request_id) == ("Revoked", ticket.request_id)
    assert arm.pim_grants(EXEC) == []
    gone = elevator.release(again)  # released twice (a crash after the release, before its record)
    assert gone is not None
    assert gone.status == "NotActive"
    assert "no assignment to remove" in gone.detail


def test_a_recorded_name_never_asked_is_asked_under_that_name(arm: FakeArm) -> None:
    ticket = replace(_ticket(), request_id="0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a")
    grant = _assign(arm).elevate(action=ACTION, change=_change(), ticket=ticket)
    assert (grant.request_id, grant.status) == (ticket.request_id, "Provisioned")
    assert [r.path.rsplit("/", 1)[-1] for r in _pim_puts(arm)] == [ticket.request_id]


def test_data_plane_changes_need_no_grant(arm: FakeArm) -> None:
    change = Change(action=ACTION.name, resource_id="https://kv-ops.vault.azure.net/secrets/acr-admin",
                    operation="update", before=None, after={"value": "x"})
    elevator = _assign(arm)
    grant = elevator.elevate(action=ACTION, change=change, ticket=_ticket())
    assert grant.status == "NotRequired"
    assert elevator.release(grant) is None
    assert arm.requests == []


# -- propagation retries ------------------------------------------------------------------------------

def test_propagation_403s_are_retried_with_backoff_and_a_fresh_token(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(requests=2, fresh_token=True)
    credential, issued = _fresh_credential()
    executor = arm.clients(credential=credential)
    executor.storage(SUB).storage_accounts.get_properties("res3376", "sto328")  # token 1 seen before the grant
    sleeps = Sleeps()
    _, outcome, _ = _engine(_assign(arm, sleeps), executor)

    assert isinstance(outcome, ApplyResult)
    patches = [r for r in arm.resource_writes if r.method == "PATCH"]
    assert [r.status for r in patches] == [403, 403, 200]
    assert [r.headers["Authorization"] for r in patches] == [f"Bearer {t}" for t in issued]
    assert len(set(issued)) == 3
    assert credential.refreshes == 2
    assert sleeps == [0.01, 0.02]


def test_without_a_fresh_token_the_retries_stop_at_their_bound(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(fresh_token=True)
    executor = arm.clients(credential=FakeCredential(principal_token(EXEC, "old")))
    executor.storage(SUB).storage_accounts.get_properties("res3376", "sto328")
    sleeps = Sleeps()
    _, outcome, released = _engine(_assign(arm, sleeps, propagation_attempts=4), executor)

    assert isinstance(outcome, ActionError)
    assert "403 AuthorizationFailed" in str(outcome)
    assert [r.status for r in arm.resource_writes] == [403] * 4
    assert sleeps == [0.01, 0.02, 0.04]  # exponential, capped at 0.04
    assert released is not None
    assert released.status == "Revoked"


def test_retries_stop_at_their_bound_and_reraise_the_last_error(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(requests=100)
    credential, issued = _fresh_credential()
    sleeps = Sleeps()
    _, outcome, _ = _engine(_assign(arm, sleeps, propagation_attempts=3), arm.clients(credential=credential))
    assert isinstance(outcome, ActionError)
    assert [r.status for r in arm.resource_writes] == [403, 403, 403]
    assert len(sleeps) == 2
    assert credential.refreshes == 2
    assert len(issued) == 3


def test_retries_end_before_the_grant_expires(arm: FakeArm) -> None:
    arm.deny_writes_until_granted(requests=100)
    now = datetime.now(UTC)
    sleeps = Sleeps()
    elevator = _assign(arm, sleeps, clock=lambda: now, propagation_backoff=Backoff(initial=20, cap=60))
    grant = Grant(strategy="pim-assign", role_name=ACTION.role.name, role_id=ACTION.role.id, scope=ACCOUNT,
                  principal_id=EXEC, status="Provisioned", expires_at=now + timedelta(seconds=30))
    executor = arm.clients(principal_id=EXEC)
    with pytest.raises(ActionError):
        elevator.run(grant, lambda: ACTION.apply(executor, _change()), clients=executor)
    assert sleeps == []  # a 20 s wait would end after expiry minus the margin
    assert len(arm.resource_writes) == 1


def test_409_another_operation_in_progress_is_retried(arm: FakeArm) -> None:
    arm.fail_next("PATCH", ACCOUNT_PATH, 409, IN_PROGRESS, times=2)
    credential, _ = _fresh_credential()
    sleeps = Sleeps()
    _, outcome, _ = _engine(_assign(arm, sleeps), arm.clients(credential=credential))
    assert isinstance(outcome, ApplyResult)
    assert [r.status for r in arm.resource_writes] == [409, 409, 200]
    assert credential.refreshes == 0  # a token is not the problem
    assert len(sleeps) == 2


def test_other_409s_are_not_retried(arm: FakeArm) -> None:
    arm.fail_next("PATCH", ACCOUNT_PATH, 409)
    sleeps = Sleeps()
    _, outcome, _ = _engine(_assign(arm, sleeps), arm.clients(principal_id=EXEC))
    assert isinstance(outcome, ActionError)
    assert [r.status for r in arm.resource_writes] == [409]
    assert sleeps == []


@pytest.mark.parametrize(("status", "headers"), [(429, {"Retry-After": "0"}), (500, None), (503, None)])
def test_throttling_and_server_errors_are_not_retried_by_tenacity(arm: FakeArm, status: int,
                                                                  headers: dict[str, str] | None) -> None:
    arm.fail_next("PATCH", ACCOUNT_PATH, status, headers=headers, times=10)
    sleeps = Sleeps()
    _, outcome, _ = _engine(_assign(arm, sleeps), arm.clients(principal_id=EXEC, retry_total=0))
    assert isinstance(outcome, ActionError)
    assert f"{status}" in str(outcome)
    # retry_total=0: azure-core made one attempt, tenacity none; a 429 is the subscription pace's to
    # retry (remediator.azure.pace: the whole subscription waits Retry-After), up to its max_retries
    expected = 1 + DEFAULT_MAX_RETRIES if status == 429 else 1
    assert len(arm.resource_writes) == expected
    assert sleeps == []


def test_azure_core_alone_retries_server_errors(arm: FakeArm) -> None:
    arm.fail_next("PATCH", ACCOUNT_PATH, 503, times=10)
    sleeps = Sleeps()
    clients = arm.clients(principal_id=EXEC, retry_total=2, retry_backoff_factor=0)
    _, outcome, _ = _engine(_assign(arm, sleeps), clients)
    assert isinstance(outcome, ActionError)
    assert len(arm.resource_writes) == 3  # 1 + azure-core's 2 retries; no second layer multiplies them
    assert sleeps == []


# -- standing ------------------------------------------------------------------------------------------

def test_standing_retries_409_but_not_403(arm: FakeArm, caplog: pytest.LogCaptureFixture) -> None:
    sleeps = Sleeps()
    elevator = StandingElevator(backoff=FAST, sleep=sleeps)
    grant, outcome, released = _engine(elevator, arm.clients(principal_id=EXEC))
    assert grant.status == "Standing"
    assert released is None
    assert isinstance(outcome, ActionError)  # enforcement: the executor holds no role here
    assert [r.status for r in arm.resource_writes] == [403]
    assert any("standing privilege" in r.getMessage() for r in caplog.records)

    arm.enforce_grants(None)
    arm.fail_next("PATCH", ACCOUNT_PATH, 409, IN_PROGRESS)
    _, outcome, _ = _engine(elevator, arm.clients(principal_id=EXEC))
    assert isinstance(outcome, ApplyResult)
    assert [r.status for r in arm.resource_writes] == [403, 409, 200]
    assert sleeps == [0.01]


class TicketRecorder(StandingElevator):
    """Standing privilege that keeps the tickets the worker hands it."""

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[Ticket] = []

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket,
                need: GrantNeed | None = None) -> Grant:
        self.tickets.append(ticket)
        return super().elevate(action=action, change=change, ticket=ticket)


def test_the_worker_tickets_each_grant_with_the_remediation_and_its_approvers(tmp_path: Path) -> None:
    """The elevator reads no remediation: the worker passes its id, fingerprint and approvers."""
    elevator = TicketRecorder()
    for world in make_world(tmp_path, elevator=elevator):
        rem = world.ingest_one(sample("02-management-ports-assessment"))
        world.engine.work()
        assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
        world.engine.work()
        applied = world.rem(rem.id)
        assert applied.state == "applied"
        assert applied.fingerprint
        assert elevator.tickets
        assert set(elevator.tickets) == {Ticket(remediation_id=rem.id, fingerprint=applied.fingerprint,
                                                approvers=(MEMBERS[0],))}


# -- pim-activate ---------------------------------------------------------------------------------------

def _activate(arm: FakeArm) -> PimActivateElevator:
    return PimActivateElevator(executor=arm.clients(principal_id=EXEC), executor_principal_id=EXEC,
                               poll_interval=0.01, propagation_backoff=FAST, sleep=Sleeps())


def test_pim_activate_an_eligible_assignment_at_the_resource(arm: FakeArm) -> None:
    arm.add_eligibility(EXEC, ROLE_DEF, f"/subscriptions/{SUB}")
    narrow = arm.add_eligibility(EXEC, ROLE_DEF, RG)
    arm.add_eligibility(EXEC, READER, ACCOUNT)  # another role
    arm.add_eligibility(BROKER, ROLE_DEF, ACCOUNT)  # someone else's: not asTarget()
    grant, outcome, released = _engine(_activate(arm), arm.clients(principal_id=EXEC))

    assert isinstance(outcome, ApplyResult)
    assert (grant.strategy, grant.scope, grant.status) == ("pim-activate", ACCOUNT, "Provisioned")
    listing = next(r for r in arm.requests if "roleeligibilityscheduleinstances" in r.path.lower())
    assert listing.path == ACCOUNT + "/providers/Microsoft.Authorization/roleEligibilityScheduleInstances"
    assert listing.query["$filter"] == "asTarget()"
    activate, deactivate = _pim_puts(arm)
    assert activate.path.startswith(ACCOUNT + "/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/")
    assert activate.principal == EXEC
    props = activate.body["properties"]
    assert props["requestType"] == "SelfActivate"
    assert props["linkedRoleEligibilityScheduleId"] == narrow["properties"]["roleEligibilityScheduleId"]
    assert props["roleDefinitionId"] == ROLE_DEF
    assert props["scheduleInfo"]["expiration"] == {"type": "AfterDuration", "duration": "PT5M"}
    assert props["ticketInfo"] == {"ticketNumber": "rem-7f3a", "ticketSystem": "remediator"}
    assert "approved by U0APPROVE1, U0APPROVE2" in props["justification"]
    assert deactivate.body["properties"]["requestType"] == "SelfDeactivate"
    assert deactivate.principal == EXEC
    assert released is not None
    assert released.status == "Revoked"
    (granted,) = arm.pim_grants(EXEC, active_only=False)
    assert (granted.scope, granted.ended) == (ACCOUNT, "removed")


@pytest.mark.parametrize("seed", ["none", "other-role", "other-resource", "expired"])
def test_pim_activate_without_an_eligibility_raises(arm: FakeArm, seed: str) -> None:
    if seed == "other-role":
        arm.add_eligibility(EXEC, READER, RG)
    elif seed == "other-resource":
        arm.add_eligibility(EXEC, ROLE_DEF, f"{RG}/providers/Microsoft.Storage/storageAccounts/other")
    elif seed == "expired":
        arm.add_eligibility(EXEC, ROLE_DEF, RG, end=datetime.now(UTC) - timedelta(minutes=1))
    with pytest.raises(ActionError, match="no eligible PIM assignment of Storage Account Contributor") as err:
        _engine(_activate(arm), arm.clients(principal_id=EXEC))
    assert "service principals and managed identities cannot hold one" in str(err.value)
    assert _pim_puts(arm) == []
    assert arm.resource_writes == []


# -- scope, justification, credential, factory --------------------------------------------------------

@pytest.mark.parametrize(("resource_id", "operation", "scope"), [
    (ACCOUNT, "update", ACCOUNT),
    (ACCOUNT + "/blobServices/default/containers/c1", "update", ACCOUNT + "/blobServices/default/containers/c1"),
    (f"{RG}/providers/Microsoft.ContainerRegistry/registries/r1/regenerateCredential", "invoke",
     f"{RG}/providers/Microsoft.ContainerRegistry/registries/r1"),
    (f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n1/securityRules/new", "create",
     f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n1"),
    (f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n1/securityRules/old", "delete",
     f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n1/securityRules/old"),
    (f"{RG}/providers/Microsoft.Network/networkSecurityGroups/n2", "create", RG),
    (f"{ACCOUNT}/providers/Microsoft.Authorization/roleAssignments/ra1", "delete", ACCOUNT),
    (f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/ra2", "create", f"/subscriptions/{SUB}"),
    ("https://kv.vault.azure.net/secrets/s", "update", "https://kv.vault.azure.net/secrets/s"),
])
def test_grant_scope(resource_id: str, operation: Any, scope: str) -> None:
    change = Change(action="x", resource_id=resource_id, operation=operation, before=None, after=None)
    assert grant_scope(change) == scope


def test_justification_is_capped() -> None:
    many = Ticket(remediation_id="rem-7f3a", fingerprint="sha256:" + "ab" * 32,
                  approvers=tuple(f"U{i:09d}" for i in range(80)))
    text = justification(ticket=many, action=ACTION, scope=ACCOUNT)
    assert len(text) == JUSTIFICATION_MAX
    assert text.endswith("…")
    assert text.startswith(f"remediator rem-7f3a: storage.disable-public-blob-access on {ACCOUNT}; plan sha256:")


def test_make_elevator(arm: FakeArm) -> None:
    broker, executor = arm.clients(principal_id=BROKER), arm.clients(principal_id=EXEC)
    assert isinstance(make_elevator(ElevationSettings(strategy="standing")), StandingElevator)
    assign = make_elevator(ElevationSettings(executor_principal_id=EXEC, duration=timedelta(minutes=10)),
                           broker=broker)
    assert isinstance(assign, PimAssignElevator)
    assert assign.duration == timedelta(minutes=10)
    activate = make_elevator(ElevationSettings(strategy="PIM-Activate", executor_principal_id=EXEC),
                             executor=executor)
    assert isinstance(activate, PimActivateElevator)

    with pytest.raises(ConfigError, match="'pim' is not one of: pim-activate, pim-assign, standing"):
        make_elevator(ElevationSettings(strategy="pim"))
    with pytest.raises(ConfigError, match="needs executor_principal_id"):
        make_elevator(ElevationSettings(), broker=broker)
    with pytest.raises(ConfigError, match="needs the broker"):
        make_elevator(ElevationSettings(executor_principal_id=EXEC))
    with pytest.raises(ConfigError, match="needs the executor's own clients"):
        make_elevator(ElevationSettings(strategy="pim-activate", executor_principal_id=EXEC), broker=broker)
    with pytest.raises(ConfigError, match="at least 5 minutes"):
        make_elevator(ElevationSettings(executor_principal_id=EXEC, duration=timedelta(minutes=4)), broker=broker)
    with pytest.raises(ConfigError, match="a GUID"):
        make_elevator(ElevationSettings(executor_principal_id="executor"), broker=broker)
    with pytest.raises(ConfigError, match="propagation_attempts"):
        make_elevator(ElevationSettings(executor_principal_id=EXEC, propagation_attempts=0), broker=broker)


def test_a_grant_need_names_its_own_scope_and_role_for_both_pim_strategies(arm: FakeArm) -> None:
    """A change that needs a role at another scope (a private endpoint's zone: Private DNS Zone Contributor on
    the zone) is granted exactly that, by pim-assign and by pim-activate, and its justification says why."""
    from remediator.actions.base import GrantNeed
    from remediator.actions.profiles import PRIVATE_DNS_ZONE_CONTRIBUTOR

    zone = f"{RG}/providers/Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net"
    need = GrantNeed(zone, PRIVATE_DNS_ZONE_CONTRIBUTOR, "Microsoft.Network/privateDnsZones/join/action")
    change = Change(action=ACTION.name, resource_id=ACCOUNT, operation="update", before={}, after={})
    ticket = Ticket(remediation_id="rem-zone1", fingerprint="sha256:" + "cd" * 32, approvers=("U0APPROVE1",))
    assign = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                               poll_interval=0.01, propagation_backoff=FAST, sleep=Sleeps())
    grant = assign.elevate(action=ACTION, change=change, ticket=ticket, need=need)
    assert (grant.scope, grant.role_id, grant.role_name) == (zone, PRIVATE_DNS_ZONE_CONTRIBUTOR.id,
                                                              "Private DNS Zone Contributor")
    (put,) = _pim_puts(arm)
    assert put.path.startswith(zone + "/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/")
    assert put.body["properties"]["roleDefinitionId"].endswith(PRIVATE_DNS_ZONE_CONTRIBUTOR.id)
    assert f"on {zone} (Microsoft.Network/privateDnsZones/join/action)" in put.body["properties"]["justification"]
    assert assign.release(grant) is not None
    arm.add_eligibility(EXEC, PRIVATE_DNS_ZONE_CONTRIBUTOR.definition_id(zone), RG)
    activated = _activate(arm).elevate(action=ACTION, change=change, ticket=ticket, need=need)
    assert (activated.scope, activated.role_id, activated.status) == (zone, PRIVATE_DNS_ZONE_CONTRIBUTOR.id,
                                                                      "Provisioned")
    assert StandingElevator().elevate(action=ACTION, change=change, ticket=ticket, need=need).scope == zone
