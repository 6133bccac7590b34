"""The engine's back half: the worker applies exactly what was approved, or nothing.

Drift after approval, ARM failures, a crash between the write and the bookkeeping, poison jobs,
lock contention, lost enqueues, undo. Real SQLiteStore, FakeArm, LiveState, StandingElevator and
shipped playbooks (see tests/helpers_engine.py); the chat is a recording double of the port.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.actions.base import Action, GrantNeed
from remediator.actions.change import Change
from remediator.app.demo import DEMO_EXECUTOR
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.errors import ActionError
from remediator.findings.parse import parse_value
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Job, Remediation
from remediator.lifecycle.posting import RETRY_CAP, SETTLE
from remediator.privilege.elevation import Grant, PimAssignElevator, Release, StandingElevator, Ticket
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.builders import alert_payload, arm_fixture
from tests.support.engine import (
    ADMIN,
    CONTOSOWEB,
    LEAD1,
    MEMBERS,
    NSG_RULE,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    World,
    deliver,
    make_world,
    sample,
    sample_state,
)

SECURITY_FIELDS = ("protocol", "sourcePortRange", "destinationPortRange", "sourceAddressPrefix",
                   "destinationAddressPrefix", "access", "priority", "direction", "destinationPortRanges")


class Crash(BaseException):
    """Raised by ``CrashingElevator``: like a killed worker, nothing catches it."""


class CrashingElevator(StandingElevator):
    """The standing strategy, except that the process "dies" at a chosen point."""

    def __init__(self, *, on_elevate: int | None = None, on_release: int | None = None) -> None:
        super().__init__()
        self.on_elevate, self.on_release = on_elevate, on_release
        self.elevations = self.releases = 0

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket,
                need: GrantNeed | None = None) -> Grant:
        self.elevations += 1
        if self.on_elevate is not None and self.elevations >= self.on_elevate:
            raise Crash
        return super().elevate(action=action, change=change, ticket=ticket)

    def release(self, grant: Grant) -> Release | None:
        self.releases += 1
        if self.on_release is not None and self.releases == self.on_release:
            raise Crash
        return super().release(grant)




@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def _approved_nsg(world: World) -> Remediation:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    return world.rem(rem.id)


def _rule(world: World, rid: str) -> dict[str, Any] | None:
    """The security-relevant fields of a rule; ARM's empty spellings ("", [], absent) compare equal."""
    doc = world.arm.get(rid)
    return None if doc is None else {k: doc["properties"].get(k) or None for k in SECURITY_FIELDS}


# -- drift ------------------------------------------------------------------------------------


def test_drift_after_approval_makes_it_stale_writes_nothing_and_asks_again(world: World) -> None:
    rem = _approved_nsg(world)
    rule = world.arm.get(NSG_RULE)
    assert rule is not None
    rule["properties"]["destinationPortRange"] = "3389-3390"  # someone edits the rule meanwhile
    world.arm.add(rule)
    world.chat.calls.clear()

    world.engine.work()
    stale = world.rem(rem.id)
    assert stale.state == "stale"
    assert stale.error is not None
    assert stale.error.startswith("the resource changed after approval (the plan changed from sha256:")
    assert world.arm.writes == []
    (successor,) = world.engine.pending()
    assert successor.id != rem.id
    assert successor.fingerprint != rem.fingerprint
    assert successor.attempt == 1
    assert successor.votes == ()
    assert world.chat.of("post_approval") == [successor.id]
    ((kind, text, _),) = world.chat.results(rem.id)
    assert kind == "stale"
    assert text.endswith("The new plan was posted for approval.")
    assert world.events(rem.id)[-2:] == ["stale", "replaced"]
    assert world.trail(rem.id)[-1].detail["replaced_by"] == successor.id
    # the old message's button cannot approve the new plan
    assert world.engine.approve(rem.id, world.actor(MEMBERS[1])).message.plain().startswith("This plan is out of date")
    assert world.engine.approve(successor.id, world.actor(MEMBERS[1])).ok
    world.engine.work()
    assert world.rem(successor.id).state == "applied"
    rule_now = _rule(world, NSG_RULE)
    assert rule_now is not None
    assert rule_now["destinationPortRange"] == "3390"  # the new plan, as approved: 3389 closed, 3390 kept


def test_fixed_meanwhile_becomes_no_change(world: World) -> None:
    rem = world.ingest_one(sample("04-acr-admin-user-policy-event"))
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    registry = world.arm.get(rem.resource_id)
    assert registry is not None
    registry["properties"]["adminUserEnabled"] = False
    world.arm.add(registry)
    world.engine.work()
    assert world.rem(rem.id).state == "no_change"
    assert world.arm.writes == []
    assert world.chat.results(rem.id)[0][0] == "info"


def test_exempted_meanwhile_becomes_exempt(world: World) -> None:
    rem = world.ingest_one(sample("04-acr-admin-user-policy-event"))
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    registry = world.arm.get(rem.resource_id)
    assert registry is not None
    registry.setdefault("tags", {})["remediation-exempt"] = "CI pulls with the admin user until CHG-1"
    world.arm.add(registry)
    world.engine.work()
    assert world.rem(rem.id).state == "exempt"
    assert world.arm.writes == []


# -- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [(409, "Conflict"), (403, "AuthorizationFailed")])
def test_arm_failure_is_loud_and_never_applied(world: World, status: int, code: str) -> None:
    world.arm.fail_next("PATCH", "/storageAccounts/contosoweb", status)
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    failed = world.rem(rem.id)
    assert failed.state == "failed"
    assert failed.error is not None
    assert f"{status} {code}: Injected failure" in failed.error
    assert failed.error.startswith("storage.disable-public-blob-access: PATCH of storage account contosoweb failed")
    ((kind, text, undo),) = world.chat.results(rem.id)
    assert kind == "failed"
    assert text == f"Failed: {failed.error}"
    assert not undo
    assert "applied" not in world.events(rem.id)
    assert world.events(rem.id)[-2:] == ["failed", "result_posted"]  # then told in the playbook's results digest
    assert [(w.method, w.status) for w in world.arm.writes] == [("PATCH", status)]  # refused; nothing after it


def test_a_finding_that_cannot_be_replanned_fails(world: World) -> None:
    rem = world.ingest_one(sample("04-acr-admin-user-policy-event"))
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    world.arm.fail_next("GET", "/registries/", 500, times=5)
    world.engine.work()
    failed = world.rem(rem.id)
    assert failed.state == "failed"
    assert failed.error is not None
    assert failed.error.startswith("could not re-plan before applying: ")
    assert world.arm.writes == []


def test_approver_removed_before_the_apply_no_longer_counts(world: World) -> None:
    rem = _approved_nsg(world)  # approved by MEMBERS[0], a member of the on-call group
    world.directory.groups["S0614TZR7"] = frozenset(MEMBERS[1:])  # removed from the group meanwhile
    world.engine.work()
    failed = world.rem(rem.id)
    assert failed.state == "failed"
    assert failed.error == ("the approval no longer holds: U0MEMBER000 is no longer allowed to approve it; "
                            "nothing was applied")
    assert world.arm.writes == []


def test_directory_down_before_the_apply_retries_later(world: World) -> None:
    rem = _approved_nsg(world)
    world.directory.broken = True
    world.engine.work()
    assert world.rem(rem.id).state == "approved"
    assert world.arm.writes == []
    world.directory.broken = False
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)
    world.engine.work()
    assert world.rem(rem.id).state == "applied"


class RecordingPim(StandingElevator):
    """Standing privilege that reports releases like a PIM strategy, or refuses to elevate."""

    strategy = "pim-test"

    def __init__(self, *, deny: bool = False) -> None:
        super().__init__()
        self.deny = deny

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket,
                need: GrantNeed | None = None) -> Grant:
        if self.deny:
            raise ActionError("PIM denied the request (request 0000)", action=action.name,
                              resource_id=change.resource_id)
        return super().elevate(action=action, change=change, ticket=ticket)

    def release(self, grant: Grant) -> Release | None:
        return Release(strategy=self.strategy, scope=grant.scope, request_id="req-1", status="Revoked")


def test_grants_and_releases_are_audited(tmp_path: Path) -> None:
    for world in make_world(tmp_path, elevator=RecordingPim()):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        world.engine.work()
        assert world.events(rem.id).count("released") == 2
        released = next(e for e in world.trail(rem.id) if e.event == "released")
        assert released.detail == {"strategy": "pim-test", "scope": CONTOSOWEB, "request_id": "req-1",
                                   "status": "Revoked", "detail": "", "grant_request_id": None}


def test_the_write_is_audited_before_the_grant_is_released(tmp_path: Path) -> None:
    """The trail reads in the order things happened: the write is made under the grant, so
    ``change_applied`` sits between ``elevated`` and ``released`` (not after the grant ended)."""
    for world in make_world(tmp_path, elevator=RecordingPim()):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        world.engine.work()
        assert world.events(rem.id) == ["planned", "approved", "applying",
                                        "elevated", "change_applied", "released", "change_verified",
                                        "elevated", "change_applied", "released", "change_verified", "applied",
                                        "result_posted"]


def test_elevation_refused_fails_before_any_write(tmp_path: Path) -> None:
    for world in make_world(tmp_path, elevator=RecordingPim(deny=True)):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        world.engine.work()
        failed = world.rem(rem.id)
        assert failed.state == "failed"
        assert failed.error is not None
        assert "PIM denied the request" in failed.error
        assert world.arm.writes == []


# -- crash recovery and poison ----------------------------------------------------------------


def test_crash_after_the_write_is_recovered_without_a_second_write(tmp_path: Path) -> None:
    elevator = CrashingElevator(on_release=2)  # dies right after the second (last) write
    for world in make_world(tmp_path, elevator=elevator):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        with pytest.raises(Crash):
            world.engine.work()
        assert world.rem(rem.id).state == "applying"
        assert len(world.arm.writes) == 2
        assert world.engine.work() == 0  # the job is invisible while the dead worker "holds" it
        world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)
        world.engine.work()  # redelivered: lock expired, state applying → re-plan: nothing to do
        done = world.rem(rem.id)
        assert done.state == "applied"
        assert len(world.arm.writes) == 2  # no second write
        applied, told = world.trail(rem.id)[-2:]
        assert (applied.event, told.event) == ("applied", "result_posted")
        assert applied.detail["recovered"] is True
        assert world.chat.results(rem.id) == [
            ("applied", "Applied and verified: 2 changes. (recovered after a restart)", True)]


def test_crash_between_two_writes_asks_again_for_the_rest(tmp_path: Path) -> None:
    elevator = CrashingElevator(on_release=1)  # dies after the first of two writes
    for world in make_world(tmp_path, elevator=elevator):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        with pytest.raises(Crash):
            world.engine.work()
        world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)
        world.engine.work()
        assert world.rem(rem.id).state == "stale"
        # the remainder is a new plan; auto playbook, inside the budget → applied
        stale = next(e for e in world.trail(rem.id) if e.event == "replaced")
        successor = world.rem(stale.detail["replaced_by"])
        assert successor.state == "applied"
        assert len(successor.changes) == 1
        assert len(world.arm.writes) == 2  # each change written once


def test_apply_job_redelivered_too_often_is_poison(tmp_path: Path) -> None:
    elevator = CrashingElevator(on_elevate=1)  # every delivery "dies" before writing
    for world in make_world(tmp_path, elevator=elevator):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        for _ in range(world.settings.max_deliveries):
            with pytest.raises(Crash):
                world.engine.work()
            world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)
        world.engine.work()
        failed = world.rem(rem.id)
        assert failed.state == "failed"
        assert failed.error == ("gave up after 6 deliveries of the apply job (the worker crashed or timed out "
                                "each time)")
        assert world.arm.writes == []
        assert world.chat.results(rem.id)[0][0] == "failed"


def test_chat_failure_is_retried_then_dropped(world: World) -> None:
    calls = 0

    def broken(remediation: Remediation) -> Any:
        nonlocal calls
        calls += 1
        raise RuntimeError("slack is down")

    world.chat.post_approval = broken  # type: ignore[method-assign]
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    for _ in range(world.settings.max_deliveries + 1):
        world.engine.work()
        # past the job's visibility, and past the post's settle time and retry backoff (a crash in the
        # chat call is an unknown outcome: nothing is posted again before SETTLE), so each round is a
        # delivery that calls the chat again
        world.clock.advance(seconds=max(world.settings.lock_ttl, SETTLE).total_seconds() + RETRY_CAP + 1)
    assert calls == world.settings.max_deliveries
    assert world.events(rem.id)[-1] == "job_dropped"
    assert world.jobs() == []
    after = world.rem(rem.id)
    assert after.state == "pending_approval"  # still approvable; it expires as usual
    assert not after.announced  # never confirmed: the sweep's announce offers it again
    assert after.posting["attempts"] == calls
    assert world.chat.of("find_posted") == [("request", rem.id)] * (calls - 1)  # each retry looked first


def test_busy_lock_postpones_the_apply(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    key = "resource:" + CONTOSOWEB.lower()
    assert world.store.acquire_lock(key, "someone-else", 600)
    world.engine.work()
    assert world.rem(rem.id).state == "approved"
    assert [k for k, _ in world.jobs()] == ["apply"]
    world.store.release_lock(key, "someone-else")
    world.clock.advance(seconds=5)
    world.engine.work()
    assert world.rem(rem.id).state == "applied"


def test_sweep_requeues_an_approval_whose_apply_job_was_lost(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    job = world.store.dequeue()
    assert job is not None
    world.store.complete(job)  # lost: as if the process died right after the approval's commit
    assert world.engine.sweep() == 0  # not yet: it may still be on its way
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds())
    assert world.engine.sweep() == 1
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert "apply_requeued" in world.events(rem.id)


def test_a_job_for_an_older_plan_is_skipped(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.handle(Job(kind="apply", payload={"remediation_id": rem.id, "fingerprint": "sha256:old"}))
    assert world.rem(rem.id).state == "approved"
    assert world.events(rem.id)[-1] == "apply_skipped"


def test_unknown_job_kind_is_dropped(world: World) -> None:
    world.engine.handle(Job(kind="frobnicate", payload={}))
    assert world.events()[-1] == "job_dropped"


# -- undo -------------------------------------------------------------------------------------


def test_undo_needs_approval_from_someone_else_and_restores_the_rules(world: World) -> None:
    before = {d["id"]: _rule(world, d["id"]) for d in _nsg_rules()}
    rem = _approved_nsg(world)
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert world.chat.results(rem.id)[-1] == ("applied", "Applied and verified: 3 changes.", True)
    assert _rule(world, NSG_RULE) is None

    requester = world.actor(MEMBERS[1])
    asked = world.engine.request_undo(rem.id, requester)
    assert asked.ok
    assert asked.message.plain() == "Undo requested; it needs 1 approval from @S0614TZR7"
    undo = asked.remediation
    assert undo is not None
    assert undo.undo_of == rem.id
    assert undo.requester == MEMBERS[1]
    assert [c["operation"] for c in undo.changes] == ["create", "update", "create"]  # reverse order
    twice = world.engine.request_undo(rem.id, world.actor(MEMBERS[2]))
    assert not twice.ok
    assert twice.message.plain() == "An undo of this remediation is already waiting for approval"

    own = world.engine.approve(undo.id, requester)
    assert not own.ok
    assert own.message.plain() == "You cannot approve your own request"
    assert world.engine.approve(undo.id, world.actor(MEMBERS[2])).ok
    writes = len(world.arm.writes)
    world.engine.work()
    assert world.rem(undo.id).state == "applied"
    assert world.rem(rem.id).state == "rolled_back"
    assert len(world.arm.writes) == writes + 3
    assert {rid: _rule(world, rid) for rid in before} == before
    assert world.chat.results(rem.id)[-1][0] == "rolled_back"
    assert world.chat.results(undo.id)[-1] == ("applied", "Undone and verified: 3 changes.", False)
    assert world.events(rem.id)[-2:] == ["undo_requested", "rolled_back"]
    refused = world.engine.request_undo(undo.id, requester)
    assert refused.message.plain() == "An undo cannot itself be undone"


@pytest.fixture
def two_admins(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, admins=(ADMIN, LEAD1))


def test_undo_refuses_when_the_resource_changed_since(two_admins: World) -> None:
    world = two_admins
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    undo = world.engine.request_undo(rem.id, world.actor(LEAD1)).remediation
    assert undo is not None
    assert undo.undo_of == rem.id
    assert undo.approvers == (ADMIN, LEAD1)  # an auto playbook: the admins ask for and approve its undo
    assert world.engine.approve(undo.id, world.actor(ADMIN)).ok
    account = world.arm.get(CONTOSOWEB)
    assert account is not None
    account["properties"]["allowBlobPublicAccess"] = True  # someone re-opened it by hand
    world.arm.add(account)
    writes = len(world.arm.writes)
    world.engine.work()
    stale = world.rem(undo.id)
    assert stale.state == "stale"
    assert stale.error is not None
    assert "undoing would overwrite that" in stale.error
    assert len(world.arm.writes) == writes
    assert world.rem(rem.id).state == "applied"


def test_undo_refusals(world: World) -> None:
    pending = world.ingest_one(sample("02-management-ports-assessment"))
    assert world.engine.request_undo(pending.id, world.actor(MEMBERS[0])).message.plain() == \
        "Only an applied remediation can be undone; this one is pending approval"
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    other_org = world.engine.request_undo(rem.id, world.actor(MEMBERS[0], team="T0OTHER0001"))
    assert other_org.message.plain() == "Only members of this workspace can do this"
    stranger = world.engine.request_undo(rem.id, world.actor(MEMBERS[0]))  # an auto playbook: admins only
    assert (stranger.ok, stranger.message.plain()) == (False, f"Only @{ADMIN} can ask to undo this")
    world.clock.advance(hours=24)
    late = world.engine.request_undo(rem.id, world.actor(ADMIN))
    assert not late.ok
    assert late.message.plain() == "The undo window closed at 2026-11-26 12:00 UTC"
    assert world.engine.request_undo("nope", world.actor(MEMBERS[0])).message.plain() == \
        "This remediation no longer exists"


# -- the audit trail --------------------------------------------------------------------------


def test_audit_trail_is_complete_and_ordered(world: World) -> None:
    rem = world.ingest_one(sample("03-blocked-owner-subassessment"))
    world.engine.work()
    world.engine.approve(rem.id, world.actor(MEMBERS[3]))
    world.engine.approve(rem.id, world.actor("U0STRANGER1"))
    world.clock.advance(minutes=1)
    world.engine.approve(rem.id, world.actor(MEMBERS[4]))
    world.engine.work()
    trail = world.trail(rem.id)
    assert [e.event for e in trail] == [
        "approval_requested", "approval_recorded", "approve_refused", "approved", "applying",
        "elevated", "change_applied", "change_verified", "elevated", "change_applied", "change_verified",
        "applied"]
    assert [e.seq for e in trail] == sorted(e.seq for e in trail)
    assert len({e.seq for e in trail}) == len(trail)
    assert [e.actor for e in trail][:5] == ["defender", "slack:U0MEMBER003", "slack:U0STRANGER1",
                                             "slack:U0MEMBER004", "worker"]
    assert trail[3].at > trail[1].at
    deletes = [e.detail["resource_id"] for e in trail if e.event == "change_applied"]
    assert [w.path for w in world.arm.writes] == deletes
    everything = world.engine.audit_trail()
    assert [e for e in everything if e.remediation_id == rem.id] == trail


def _nsg_rules() -> list[dict[str, Any]]:
    out = []
    for doc in sample_state():
        for rule in (doc.get("properties") or {}).get("securityRules") or []:
            out.append(copy.deepcopy(rule))
    return out



def test_a_rotation_is_applied_and_verified_inside_its_grant(tmp_path: Path) -> None:
    """acr.rotate-credentials verifies with listCredentials, which only the grant's role may call: the
    worker verifies before it releases the grant (after the release that read is refused with 403)."""
    registry = arm_fixture("containerregistry__2017-10-01__RegistryUpdate_adminUserEnabled.json")
    registry["properties"]["adminUserEnabled"] = True
    broker = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    settings = Settings(approver_roles=ROLES, slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                        slack_channel="C0REMEDIATE", group_wait=timedelta(0))
    with FakeArm() as arm, SQLiteStore(tmp_path / "remediator.db", clock=FakeClock()) as store:
        arm.add(registry)
        arm.enforce_grants(DEMO_EXECUTOR)  # the executor (and the unidentified reader) hold no standing role
        executor = arm.clients(principal_id=DEMO_EXECUTOR)
        elevator = PimAssignElevator(broker=arm.clients(principal_id=broker), executor_principal_id=DEMO_EXECUTOR,
                                     sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0)
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(arm.clients()),
                        clients=executor, elevator=elevator, chat=RecordingChat(),
                        directory=StaticDirectory({ONCALL: MEMBERS}), clock=FakeClock())
        before = dict(arm.credentials(registry["id"]))
        alert = alert_payload(registry["id"], alert_type="ARM_AnomalousOperation.CredentialAccess")
        (planned,) = deliver(engine, store, parse_value(alert, source="test"))
        rem = planned.remediation
        assert rem is not None, planned
        assert rem.playbook == "acr-rotate-credentials"
        for member in MEMBERS[:2]:  # high risk: a quorum of two
            assert engine.approve(rem.id, Actor(user_id=member, team_id=TEAM, enterprise_id=None, name=member)).ok
        engine.work()
        done = engine.get(rem.id)
        assert done is not None
        assert (done.state, done.error) == ("applied", None)
        after = dict(arm.credentials(registry["id"]))
        assert all(after[k] != before[k] for k in before)  # password and password2 both rotated
        assert arm.pim_grants(DEMO_EXECUTOR) == []  # released
        events = [e.event for e in store.audit_log(rem.id)]
        assert events.count("change_verified") == 2
