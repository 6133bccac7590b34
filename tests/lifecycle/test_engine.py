"""The engine's front half: ingest, the auto decision, approvals, rejections, pause, storms.

Real parts (see tests/helpers_engine.py): SQLiteStore on a temp file, FakeArm through LiveState and
the real SDK clients, StandingElevator, the shipped playbooks and sample findings. The chat is a
recording double of the ChatPort (the Slack implementation is tested against FakeSlack).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from remediator.app.demo import SAMPLES
from remediator.azure.reader import LiveState
from remediator.findings.model import Record
from remediator.findings.parse import parse_value
from remediator.lifecycle.approval import Need
from remediator.lifecycle.engine import INGEST_SLICE, Engine
from remediator.lifecycle.jobs import PLAN_SPREAD
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import StandingElevator
from remediator.store import SQLiteStore
from tests.support.builders import alert_payload
from tests.support.engine import (
    ADMIN,
    CONTAINER,
    CONTOSOWEB,
    LEAD1,
    LEAD2,
    MEMBERS,
    ONCALL,
    OTHER_TEAM,
    PLAYBOOKS,
    ROLES,
    STRANGER,
    World,
    make_world,
    network_assessment,
    sample,
    storage_account,
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def _props(world: World, rid: str) -> dict[str, object]:
    doc = world.arm.get(rid)
    assert doc is not None
    return dict(doc["properties"])


# -- ingest and the auto path -----------------------------------------------------------------


def test_auto_low_risk_finding_is_applied_and_verified(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    assert rem.state == "approved"  # storage-disable-public-blob-access: risk low, approval auto
    assert world.jobs() == [("apply", {"remediation_id": rem.id, "fingerprint": rem.fingerprint})]
    assert world.arm.writes == []  # nothing written on ingest

    # apply, update (no message: skipped), reply (no thread: into the playbook's results digest), results
    assert world.engine.work() == 4
    assert world.rem(rem.id).state == "applied"
    assert _props(world, CONTOSOWEB)["allowBlobPublicAccess"] is False
    assert _props(world, CONTAINER)["publicAccess"] == "None"
    assert len(world.arm.writes) == 2
    assert world.chat.results(rem.id) == [("applied", "Applied and verified: 2 changes.", True)]
    assert world.events(rem.id) == ["planned", "approved", "applying",
                                    "elevated", "change_applied", "change_verified",
                                    "elevated", "change_applied", "change_verified", "applied", "result_posted"]
    approved = world.trail(rem.id)[1]
    assert approved.actor == "auto"
    grant = world.trail(rem.id)[3]
    assert grant.detail["strategy"] == "standing"
    assert grant.detail["role"] == "Storage Account Contributor"


def test_auto_path_audits_what_the_plan_could_not_check(world: World) -> None:
    """The alert names a container that is not there: the account setting is still planned and
    auto-applied, and the opening audit event and the record say what was not checked."""
    doc = json.loads((SAMPLES / "findings" / "01-storage-open-container-alert.json").read_text())
    doc["Entities"][1]["Name"] = "gone-container"
    rem = world.ingest_one(parse_value(doc, source="test"))
    assert rem.state == "approved"
    (warning,) = rem.warnings
    assert warning.startswith(f"blob container {CONTOSOWEB}/blobServices/default/containers/gone-container not in "
                              "the resource state: its own publicAccess was not checked")
    planned, approved = world.trail(rem.id)[:2]
    assert (planned.event, approved.event, approved.actor) == ("planned", "approved", "auto")
    assert planned.detail["warnings"] == [warning]
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert world.rem(rem.id).warnings == (warning,)


def test_an_unwarned_plan_audits_no_warnings_key(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    assert rem.warnings == ()
    assert "warnings" not in world.trail(rem.id)[0].detail


def test_each_sample_gets_the_right_outcome(world: World) -> None:
    outcomes = {}
    for name in ("02-management-ports-assessment", "03-blocked-owner-subassessment",
                 "04-acr-admin-user-policy-event", "06-storage-public-access-exempt", "07-simulated-alert"):
        (result,) = world.deliver(sample(name))
        outcomes[name] = (result.outcome, result.remediation.state if result.remediation else None)
    assert outcomes == {
        "02-management-ports-assessment": ("changes", "pending_approval"),
        "03-blocked-owner-subassessment": ("changes", "pending_approval"),
        "04-acr-admin-user-policy-event": ("changes", "pending_approval"),
        "06-storage-public-access-exempt": ("exempt", "exempt"),
        "07-simulated-alert": ("ignored", None),
    }
    world.engine.work()
    assert len(world.chat.of("post_approval")) == 3  # one message per request, posted by the worker
    assert world.arm.writes == []


def test_pending_request_carries_the_playbook_terms(world: World) -> None:
    rem = world.ingest_one(sample("03-blocked-owner-subassessment"))  # rbac-revoke-excess-permissions
    assert rem.approvers == (ONCALL, LEAD1, LEAD2)
    assert rem.quorum == 2
    assert rem.expires_at == world.clock.now + world.engine.settings.undo_window  # expires_after: 1d
    assert rem.fingerprint
    assert rem.fingerprint.startswith("sha256:")
    assert world.engine.requirement(rem) == Need(approvers=("S0614TZR7", "U05K8NQ2R7T", "U05M3XH9V4P"), quorum=2)
    assert world.engine.requirement(rem).text().plain() == \
        "0 of 2 approvals from @S0614TZR7, @U05K8NQ2R7T, @U05M3XH9V4P"


def test_a_finding_delivered_twice_opens_one_remediation_and_one_message(world: World) -> None:
    first = world.ingest_one(sample("02-management-ports-assessment"))
    (again,) = world.engine.ingest(sample("02-management-ports-assessment"))
    assert again.outcome == "duplicate"
    (row,) = world.store.inbound([str(again.record["id"])])
    assert (row.waiting, row.remediation_id) == (False, first.id)
    world.engine.work()
    assert world.chat.of("post_approval") == [first.id]


def test_a_finding_for_a_resource_with_an_open_remediation_joins_it(world: World) -> None:
    first = world.ingest_one(sample("02-management-ports-assessment"))
    doc = json.loads((SAMPLES / "findings" / "02-management-ports-assessment.json").read_text())
    doc["properties"]["status"]["statusChangeDate"] = "2026-11-27T08:00:00Z"  # unhealthy again: a new finding id
    (joined,) = world.deliver(parse_value(doc, source="test"))  # planned, and stopped by the dedup index
    assert joined.outcome == "duplicate"
    assert joined.remediation is not None
    assert joined.remediation.id == first.id
    assert world.events(first.id)[-1] == "finding_joined"
    (row,) = world.store.inbound([str(joined.record["id"])])
    assert row.remediation_id == first.id  # its redeliveries are duplicates on arrival from now on


def test_a_redelivery_is_answered_without_reading_azure_again(world: World) -> None:
    world.ingest_one(sample("02-management-ports-assessment"))
    world.arm.reset_log()
    (again,) = world.engine.ingest(sample("02-management-ports-assessment"))
    assert again.outcome == "duplicate"
    assert world.engine.work() == 2  # the first delivery's announce and post; nothing for the redelivery
    assert world.arm.requests == []  # no state read, no re-plan


def test_the_same_finding_twice_in_one_batch_is_deduplicated(world: World) -> None:
    results = world.deliver(sample("02-management-ports-assessment") * 2)
    assert [r.outcome for r in results] == ["changes", "duplicate"]


def test_exempt_and_compliant_findings_are_recorded_without_taking_the_slot(world: World) -> None:
    (exempt,) = world.deliver(sample("06-storage-public-access-exempt"))
    assert exempt.remediation is not None
    assert exempt.remediation.state == "exempt"
    assert world.events(exempt.remediation.id) == ["exempt"]
    # once applied, the same alert plans no changes: recorded as no_change, nothing queued
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    (again,) = world.deliver(sample("01-storage-open-container-alert"))
    assert again.outcome == "no_changes"
    assert again.remediation is not None
    assert again.remediation.state == "no_change"
    assert world.rem(rem.id).state == "applied"
    assert world.jobs() == []


def test_budget_exceeded_asks_the_admins_instead_of_applying(tmp_path: Path) -> None:
    docs = [storage_account(f"acct{i}", allowBlobPublicAccess=True) for i in range(3)]
    for world in make_world(tmp_path, docs=docs, auto_budget_per_hour=2):
        states = []
        for doc in docs:
            (result,) = world.deliver(parse_value(alert_payload(doc["id"]), source="test"))
            assert result.remediation is not None
            states.append(result.remediation.state)
        assert states == ["approved", "approved", "pending_approval"]
        third = world.engine.pending()[0]
        assert third.approvers == (ADMIN,)
        assert third.quorum == 1
        assert world.trail(third.id)[-1].detail["reason"].startswith("the auto-remediation budget of 2 per hour")
        # a new hour, a new budget
        world.clock.advance(hours=1)
        extra = storage_account("acct9", allowBlobPublicAccess=True)
        world.arm.add(extra)
        (result,) = world.deliver(parse_value(alert_payload(extra["id"]), source="test"))
        assert result.remediation is not None
        assert result.remediation.state == "approved"


# -- approvals --------------------------------------------------------------------------------


def test_quorum_of_two(world: World) -> None:
    rem = world.ingest_one(sample("03-blocked-owner-subassessment"))
    world.engine.work()
    first = world.engine.approve(rem.id, world.actor(LEAD1))
    assert first.ok
    # the one who just voted is not in the list of those it waits for
    assert first.message.plain() == "Approved: 1 of 2 approvals, waiting for 1 more from @S0614TZR7, @U05M3XH9V4P"
    assert world.rem(rem.id).state == "pending_approval"
    assert world.engine.requirement(world.rem(rem.id)).approved_by == ("U05K8NQ2R7T",)
    assert world.engine.requirement(world.rem(rem.id)).missing == 1
    assert world.engine.requirement(world.rem(rem.id)).text().plain().endswith("; approved by @U05K8NQ2R7T")
    again = world.engine.approve(rem.id, world.actor(LEAD1))
    assert not again.ok
    assert again.message.plain() == ("You already approved this; waiting for 1 more approval from @S0614TZR7, "
                                     "@U05M3XH9V4P")

    second = world.engine.approve(rem.id, world.actor(MEMBERS[0]))  # a member of the on-call group
    assert second.ok
    assert second.message.plain() == "Approved by @U05K8NQ2R7T, @U0MEMBER000: applying now"
    assert world.rem(rem.id).state == "approved"
    assert world.arm.writes == []  # the click does not touch Azure
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert [w.method for w in world.arm.writes] == ["DELETE", "DELETE"]
    events = world.events(rem.id)
    assert events[:5] == ["approval_requested", "approval_recorded", "approve_refused", "approved", "applying"]
    assert events[-1] == "applied"
    approved = world.trail(rem.id)[3]
    assert approved.actor == "slack:U0MEMBER000"
    assert approved.detail["team_id"] == "T0TEAM00001"
    assert approved.detail["fingerprint"] == rem.fingerprint
    assert ("update_approval", (rem.id, "applied")) in world.chat.calls
    assert world.chat.results(rem.id) == [("applied", "Applied and verified: 2 changes.", True)]


@pytest.mark.parametrize(
    ("user", "team", "enterprise", "message"),
    [
        (STRANGER, "T0TEAM00001", None, "Only @U05K8NQ2R7T, @U05M3XH9V4P or members of @S0614TZR7 "
                                        "can approve this"),
        (LEAD1, OTHER_TEAM, None, "Only members of this workspace can do this"),
        (LEAD1, None, None, "Only members of this workspace can do this"),
    ],
)
def test_unauthorised_clicks_are_refused_and_audited(world: World, user: str, team: str | None,
                                                     enterprise: str | None, message: str) -> None:
    rem = world.ingest_one(sample("03-blocked-owner-subassessment"))
    decision = world.engine.approve(rem.id, world.actor(user, team=team, enterprise=enterprise))
    assert not decision.ok
    assert decision.message.plain() == message
    assert world.rem(rem.id).votes == ()
    refused = world.trail(rem.id)[-1]
    assert refused.event == "approve_refused"
    assert refused.actor == f"slack:{user}"
    assert refused.detail["team_id"] == team


def test_enterprise_id_must_match_when_configured(tmp_path: Path) -> None:
    for world in make_world(tmp_path, slack_enterprise_id="E0ENTERPRISE1"):
        rem = world.ingest_one(sample("02-management-ports-assessment"))
        other = world.engine.approve(rem.id, world.actor(MEMBERS[0], enterprise="E0OTHERORG01"))
        assert not other.ok
        assert other.message.plain() == "Only members of this organisation can do this"
        ok = world.engine.approve(rem.id, world.actor(MEMBERS[0], enterprise="E0ENTERPRISE1"))
        assert ok.ok


def test_group_member_is_resolved_through_the_directory(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))  # nsg: approvers [S0614TZR7], quorum 1
    decision = world.engine.approve(rem.id, world.actor(MEMBERS[5]))
    assert decision.ok
    assert world.rem(rem.id).state == "approved"
    assert world.directory.lookups == 1


def test_directory_failure_fails_closed(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.directory.broken = True
    decision = world.engine.approve(rem.id, world.actor(MEMBERS[5]))
    assert not decision.ok
    assert decision.message.plain().startswith("Cannot check that you may do this: could not check membership of "
                                       "@S0614TZR7")
    assert world.rem(rem.id).state == "pending_approval"


def test_global_approvers_narrow_and_never_widen(tmp_path: Path) -> None:
    for world in make_world(tmp_path, approvers=(MEMBERS[1], STRANGER)):
        rem = world.ingest_one(sample("02-management-ports-assessment"))
        # STRANGER is in the global list but not in the playbook's: still refused
        assert not world.engine.approve(rem.id, world.actor(STRANGER)).ok
        # MEMBERS[0] is in the playbook's group but not in the global list: refused
        refused = world.engine.approve(rem.id, world.actor(MEMBERS[0]))
        assert refused.message.plain() == "Approvers must also be @U0MEMBER001, @U0STRANGER1"
        assert world.engine.approve(rem.id, world.actor(MEMBERS[1])).ok


def test_min_quorum_raises_the_playbook_quorum(tmp_path: Path) -> None:
    for world in make_world(tmp_path, min_quorum=2):
        rem = world.ingest_one(sample("02-management-ports-assessment"))
        assert rem.quorum == 2
        assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).message.plain().startswith("Approved: 1 of 2")


def test_a_quorum_above_the_listed_people_brings_in_the_admins(tmp_path: Path) -> None:
    # A deployment maps the on-call role to one person, and min_quorum asks for two: without the admins
    # the request could never be approved.
    for world in make_world(tmp_path, min_quorum=2, approver_roles={**ROLES, "security-oncall": (LEAD1,)}):
        rem = world.ingest_one(sample("02-management-ports-assessment"))  # nsg: approvers [security-oncall]
        assert rem.quorum == 2
        assert rem.approvers == (LEAD1, ADMIN)
        assert world.engine.approve(rem.id, world.actor(LEAD1)).ok
        assert world.engine.approve(rem.id, world.actor(ADMIN)).message.plain().startswith("Approved by")
        assert world.rem(rem.id).state == "approved"


def test_a_group_is_enough_people_for_any_quorum(tmp_path: Path) -> None:
    for world in make_world(tmp_path, min_quorum=3):
        rem = world.ingest_one(sample("02-management-ports-assessment"))
        assert rem.approvers == (ONCALL,)  # a user group: many people, nobody added


def test_no_approvers_means_nobody_can_approve(tmp_path: Path) -> None:
    for world in make_world(tmp_path, admins=(), auto_budget_per_hour=0):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))
        assert rem.state == "pending_approval"
        assert rem.approvers == ()
        assert world.engine.requirement(rem).text().plain() == "nobody can approve this: no approvers are configured"
        for user in (ADMIN, LEAD1, MEMBERS[0]):
            decision = world.engine.approve(rem.id, world.actor(user))
            assert not decision.ok
            assert decision.message.plain() == "Nobody can approve this: no approvers are configured for it"


def test_unknown_id_is_refused(world: World) -> None:
    decision = world.engine.approve("not-a-real-id", world.actor(LEAD1))
    assert not decision.ok
    assert decision.message.plain() == "This request no longer exists"


def test_double_click_and_replay_apply_exactly_once(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    actor = world.actor(MEMBERS[0])
    assert world.engine.approve(rem.id, actor).ok
    replay = world.engine.approve(rem.id, actor)
    other = world.engine.approve(rem.id, world.actor(MEMBERS[1]))
    assert not replay.ok
    assert replay.message.plain() == "Already approved by @U0MEMBER000"
    assert not other.ok
    assert other.message.plain() == "Already approved by @U0MEMBER000"
    assert [k for k, _ in world.jobs()].count("apply") == 1
    world.engine.work()
    writes = len(world.arm.writes)
    assert writes == 3
    assert not world.engine.approve(rem.id, actor).ok  # a replay after the apply changes nothing
    world.engine.work()
    assert len(world.arm.writes) == writes


def test_fifty_concurrent_approvals_make_one_apply(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    barrier = threading.Barrier(50)
    decisions = []
    lock = threading.Lock()

    def click(user: str) -> None:
        barrier.wait()
        d = world.engine.approve(rem.id, world.actor(user))
        with lock:
            decisions.append(d)

    threads = [threading.Thread(target=click, args=(u,)) for u in MEMBERS[:50]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(d.ok for d in decisions) == 1
    assert all(d.message.plain().startswith("Already approved by") for d in decisions if not d.ok)
    assert [k for k, _ in world.jobs()].count("apply") == 1
    assert world.events(rem.id).count("approved") == 1
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert len(world.arm.writes) == 3  # one write set: the plan's three changes


def test_reject_records_the_reason_and_denies(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    refused = world.engine.reject(rem.id, world.actor(STRANGER), "no")
    assert not refused.ok
    decision = world.engine.reject(rem.id, world.actor(MEMBERS[0]), "  jump host   needs RDP\nuntil Friday ")
    assert decision.ok
    assert decision.message.plain() == "Rejected: nothing will be applied"
    rejected = world.rem(rem.id)
    assert rejected.state == "rejected"
    assert rejected.votes[-1].decision == "reject"
    assert rejected.votes[-1].reason == "jump host needs RDP until Friday"
    late = world.engine.approve(rem.id, world.actor(MEMBERS[1]))
    assert not late.ok
    assert late.message.plain() == "Already rejected by @U0MEMBER000"
    world.engine.work()
    assert world.chat.results(rem.id) == [("rejected", "Rejected: jump host needs RDP until Friday", False)]
    assert ("update_approval", (rem.id, "rejected")) in world.chat.calls
    assert world.arm.writes == []
    # rejected is final: the next delivery of the finding asks again
    (again,) = world.deliver(sample("02-management-ports-assessment"))
    assert again.outcome == "changes"


# -- expiry and reminders ---------------------------------------------------------------------


def test_approve_after_expiry_is_refused_and_expires_it(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))  # expires_after: 2h
    world.engine.work()
    world.clock.advance(hours=2)
    decision = world.engine.approve(rem.id, world.actor(MEMBERS[0]))
    assert not decision.ok
    assert decision.message.plain() == "This request expired at 2026-11-25 14:00 UTC"
    assert world.rem(rem.id).state == "expired"
    world.engine.work()
    assert world.chat.results(rem.id) == [
        ("expired", "Expired at 2026-11-25 14:00 UTC without enough approvals: nothing was applied.", False)]
    again = world.engine.approve(rem.id, world.actor(MEMBERS[0]))
    assert again.message.plain() == "This request expired at 2026-11-25 14:00 UTC"


def test_sweep_reminds_once_then_expires(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))  # remind_after 30m, expires 2h
    world.engine.work()
    world.clock.advance(minutes=29)
    assert world.engine.sweep() == 0
    world.clock.advance(minutes=1)
    assert world.engine.sweep() == 1
    assert world.engine.sweep() == 0  # reminded once
    world.engine.work()
    assert world.chat.results(rem.id) == [
        ("reminder", "Reminder: this request still needs approval; it expires at 2026-11-25 14:00 UTC.", False)]
    world.clock.advance(hours=2)
    assert world.engine.sweep() == 1
    assert world.rem(rem.id).state == "expired"
    assert world.events(rem.id) == ["approval_requested", "reminded", "expired"]


def test_reminder_before_expiry_from_settings(tmp_path: Path) -> None:
    for world in make_world(tmp_path, reminder_before=timedelta(minutes=15)):
        rem = world.ingest_one(sample("04-acr-admin-user-policy-event"))  # no remind_after; expires 1d
        world.clock.advance(hours=23, minutes=44)
        assert world.engine.sweep() == 0
        world.clock.advance(minutes=1)
        assert world.engine.sweep() == 1
        assert world.rem(rem.id).reminded


# -- pause ------------------------------------------------------------------------------------


def test_only_admins_pause_and_resume(world: World) -> None:
    assert not world.engine.pause(world.actor(LEAD1)).ok
    assert not world.engine.pause(world.actor(ADMIN, team=OTHER_TEAM)).ok
    assert not world.engine.paused()
    assert world.engine.pause(world.actor(ADMIN)).ok
    assert world.engine.paused()
    assert not world.engine.resume(world.actor(LEAD1)).ok
    assert world.engine.resume(world.actor(ADMIN)).ok
    assert not world.engine.paused()
    assert world.events().count("paused") == 1
    assert world.events().count("pause_refused") == 2


def test_pause_with_no_admins_configured_is_refused(tmp_path: Path) -> None:
    for world in make_world(tmp_path, admins=()):
        decision = world.engine.pause(world.actor(ADMIN))
        assert not decision.ok
        assert decision.message.plain() == "Nobody can do this: no admins are configured"


def test_pause_stops_auto_apply_and_approved_applies_until_resume(world: World) -> None:
    assert world.engine.pause(world.actor(ADMIN)).ok
    auto = world.ingest_one(sample("01-storage-open-container-alert"))
    assert auto.state == "pending_approval"  # paused: not applied automatically, asked instead
    assert auto.approvers == (ADMIN,)
    assert world.trail(auto.id)[-1].detail["reason"] == "auto-remediation is paused"
    nsg = world.ingest_one(sample("02-management-ports-assessment"))
    world.engine.work()
    decision = world.engine.approve(nsg.id, world.actor(MEMBERS[0]))
    assert decision.ok
    assert decision.message.plain().endswith("applying is paused; it will be applied on resume")
    world.engine.work()
    assert world.rem(nsg.id).state == "approved"
    assert "apply_deferred" in world.events(nsg.id)
    assert world.arm.writes == []
    assert world.engine.resume(world.actor(ADMIN)).ok
    world.engine.work()
    assert world.rem(nsg.id).state == "applied"
    assert len(world.arm.writes) == 3


# -- storms -----------------------------------------------------------------------------------


def test_a_storm_in_one_resource_group_is_one_digest(tmp_path: Path) -> None:
    docs = [storage_account(f"stormacct{i:02d}") for i in range(7)]
    for world in make_world(tmp_path, docs=docs):
        records = [network_assessment(d["id"]) for d in docs] + sample("02-management-ports-assessment")
        results = world.deliver(records)
        assert [r.outcome for r in results] == ["changes"] * 8
        assert [k for k, _ in world.jobs()] == ["announce"]  # planning posts nothing itself
        assert world.engine.work(max_jobs=1) == 1
        kinds = [k for k, _ in world.jobs()]
        assert kinds == ["post_digest", "post"]
        world.engine.work()
        (digest,) = world.chat.of("post_digest")
        playbook, group, members = digest
        assert (playbook, group, len(members)) == ("storage-restrict-network-access", "rg-prod-data", 7)
        assert len(world.chat.of("post_approval")) == 1
        pending = [r for r in world.engine.pending() if r.playbook == "storage-restrict-network-access"]
        assert {r.message["ts"] for r in pending} == {pending[0].message["ts"]}
        assert all(r.message.get("digest") for r in pending)

        decision = world.engine.approve_digest([r.id for r in pending] + ["nope"], world.actor(MEMBERS[0]))
        assert decision.ok
        assert decision.message.plain() == "Approved 7 of 8 requests; 1 not approved (first reason: This request no " \
                                   "longer exists)"
        world.engine.work()
        assert all(world.rem(r.id).state == "applied" for r in pending)
        assert len(world.arm.writes) == 7
        assert not [c for c in world.chat.of("update_approval") if c[0] in {r.id for r in pending}]
        assert len(world.chat.results()) == 7


def test_below_the_threshold_each_request_is_posted(tmp_path: Path) -> None:
    docs = [storage_account(f"smallacct{i}") for i in range(4)]
    for world in make_world(tmp_path, docs=docs):
        world.deliver([network_assessment(d["id"]) for d in docs])
        world.engine.work(max_jobs=1)  # the announce job
        assert [k for k, _ in world.jobs()] == ["post"] * 4


def test_pending_lists_open_requests(world: World) -> None:
    world.deliver(sample("02-management-ports-assessment") + sample("04-acr-admin-user-policy-event"))
    pending: list[Remediation] = world.engine.pending()
    assert sorted(r.playbook for r in pending) == ["acr-disable-admin-user", "nsg-close-management-ports"]


# -- the intake: ingest stores and queues, the worker plans -----------------------------------------


def _backlog(n: int) -> tuple[list[dict[str, object]], list[Record]]:
    """``n`` storage accounts, each with two open findings (its firewall assessment, an open-container alert)."""
    docs = [storage_account(f"backlog{i:03d}", rg=f"rg-data-{i % 4}", allowBlobPublicAccess=True) for i in range(n)]
    records: list[Record] = [network_assessment(str(d["id"])) for d in docs]
    records += [r for d in docs for r in parse_value(alert_payload(str(d["id"])), source="test")]
    return docs, records


def test_a_backlog_is_queued_as_several_plan_jobs_of_whole_resources(tmp_path: Path) -> None:
    docs, records = _backlog(60)
    for world in make_world(tmp_path, docs=docs):
        results = world.engine.ingest(records, source="scan")
        assert [r.outcome for r in results] == ["queued"] * 120
        plan_jobs = [p["finding_ids"] for k, p in world.jobs() if k == "plan"]
        assert len(plan_jobs) >= 5  # 120 findings: not one job for one worker
        assert sorted(f for job in plan_jobs for f in job) == sorted(str(r.record["id"]) for r in results)
        resource_of = {str(r.record["id"]): str(r.record["resource_id"]).lower() for r in results}
        assert all(len({resource_of[f] for f in job}) * 2 == len(job) for job in plan_jobs)  # both of a resource
        (one,) = world.engine.ingest(sample("02-management-ports-assessment"))  # a trickle: one job
        assert [p["finding_ids"] for k, p in world.jobs() if k == "plan"][len(plan_jobs):] == [[one.record["id"]]]


def test_a_resource_s_findings_are_planned_together_across_ingest_slices(tmp_path: Path) -> None:
    """A scan lists findings query by query (every assessment, then every alert): more than one ingest
    slice apart, a resource's two findings would be planned in different jobs, the second one after
    the first one's remediation ended (a second remediation for the same change)."""
    docs, records = _backlog(INGEST_SLICE // 2 + 10)  # assessments first, then alerts: > INGEST_SLICE
    for world in make_world(tmp_path, docs=docs):
        results = world.engine.ingest(records, source="scan")
        assert [r.outcome for r in results] == ["queued"] * len(records)  # answers in the records' order
        assert [r.record["id"] for r in results] == [r.id for r in records]
        resource_of = {str(r.record["id"]): str(r.record["resource_id"]).lower() for r in results}
        plan_jobs = [p["finding_ids"] for k, p in world.jobs() if k == "plan"]
        job_of = {resource_of[f]: n for n, job in enumerate(plan_jobs) for f in job}
        assert all(job_of[resource_of[f]] == n for n, job in enumerate(plan_jobs) for f in job)
        assert sum(map(len, plan_jobs)) == len(records)
        # sized for the whole delivery, not per slice: about PLAN_SPREAD jobs (each costs a Resource Graph query)
        assert len(plan_jobs) <= PLAN_SPREAD + 1


def test_two_workers_plan_one_backlog_at_once_one_remediation_per_finding(tmp_path: Path) -> None:
    """Worker A holds a plan job (as while it plans it: hidden for lock_ttl); worker B, another
    engine on the same store file, plans the rest meanwhile instead of waiting for A's one big job."""
    docs, records = _backlog(40)
    for world in make_world(tmp_path, docs=docs):
        world.engine.ingest(records, source="scan")
        with SQLiteStore(world.store.path, clock=world.clock) as other_store:
            clients = world.arm.clients()
            other = Engine(store=other_store, settings=world.settings, playbooks=PLAYBOOKS,
                           state=LiveState(clients), clients=clients, elevator=StandingElevator(),
                           chat=world.chat, directory=world.directory, clock=world.clock)
            held = world.store.dequeue(visibility_seconds=world.settings.lock_ttl.total_seconds())
            assert held is not None
            assert held.kind == "plan"
            planned_by_b = 0
            while (job := other_store.dequeue(visibility_seconds=60)) is not None:
                other.handle(job)  # B plans (and announces, applies) while A holds its job
                other_store.complete(job)
                planned_by_b += len(job.payload["finding_ids"]) if job.kind == "plan" else 0
            assert planned_by_b > 0
            waiting = [r.finding_id for r in world.store.inbound(held.payload["finding_ids"]) if r.waiting]
            assert sorted(waiting) == sorted(held.payload["finding_ids"])  # A's findings: A's alone
            world.engine.handle(held)  # A finishes its own
            world.store.complete(held)
        assert world.store.waiting(received_before=world.clock() + timedelta(days=1)) == []
        rems = world.store.list(limit=1000)
        assert sorted((r.playbook, r.resource_id.lower()) for r in rems) == sorted(
            (p, str(d["id"]).lower()) for d in docs
            for p in ("storage-disable-public-blob-access", "storage-restrict-network-access"))
        assert planned_by_b + len(held.payload["finding_ids"]) == 80


def test_ingest_stores_and_queues_without_reading_azure(world: World) -> None:
    world.arm.reset_log()
    results = world.engine.ingest(sample("02-management-ports-assessment") + sample("07-simulated-alert"),
                                  source="eventhub")
    assert [r.outcome for r in results] == ["queued", "ignored"]
    assert world.arm.requests == []  # no state read on the ingest path
    assert world.engine.pending() == []
    assert [k for k, _ in world.jobs()] == ["plan"]
    (row,) = world.store.inbound([str(results[0].record["id"])])
    assert (row.waiting, row.source) == (True, "eventhub")

    assert world.engine.work() == 3  # plan, announce (group_wait 0 here), post
    (rem,) = world.engine.pending()
    assert world.trail(rem.id)[0].actor == "eventhub"  # the delivery is the actor of the opening
    assert world.chat.of("post_approval") == [rem.id]
    assert world.store.inbound([rem.finding_id])[0].remediation_id == rem.id


def test_what_no_playbook_can_claim_is_answered_at_once_and_stores_nothing(world: World) -> None:
    doc = alert_payload(CONTOSOWEB, alert_type="Storage.Blob_MalwareHashReputation")
    (result,) = world.engine.ingest(parse_value(doc, source="test"))
    assert result.outcome == "no_match"
    assert result.reason == "no playbook claims alert Storage.Blob_MalwareHashReputation on " \
                            "Microsoft.Storage/storageAccounts"
    assert world.jobs() == []
    assert world.store.inbound([str(result.record["id"])]) == []


def test_resource_tags_are_read_when_planning(tmp_path: Path) -> None:
    """Tags need a state read, so the exemption tag (like a playbook's ``where``) is judged on the worker."""
    docs = [storage_account("tagged")]
    docs[0]["tags"] = {"remediation-exempt": "migrating: CHG-1"}
    for world in make_world(tmp_path, docs=docs):
        (result,) = world.deliver([network_assessment(docs[0]["id"])])
        assert (result.outcome, result.remediation is not None) == ("exempt", True)


def test_a_poison_plan_job_ends_its_findings_audited(world: World) -> None:
    results = world.engine.ingest(sample("02-management-ports-assessment"))
    job = world.store.dequeue(visibility_seconds=0)
    assert job is not None
    assert job.kind == "plan"
    poisoned = dataclasses.replace(job, dequeue_count=world.settings.max_deliveries + 1)
    world.engine.handle(poisoned)
    (failed,) = [e for e in world.trail() if e.event == "plan_failed"]
    assert failed.detail["finding_id"] == results[0].record["id"]
    assert "gave up after 6 deliveries of the plan job" in failed.detail["reason"]
    (row,) = world.store.inbound([str(results[0].record["id"])])
    assert (row.waiting, row.remediation_id) == (False, None)
    (again,) = world.engine.ingest(sample("02-management-ports-assessment"))
    assert again.outcome == "queued"  # Defender's next delivery of it is planned afresh


def test_the_sweep_requeues_planning_that_was_lost_and_prunes_the_inbox(world: World) -> None:
    (result,) = world.engine.ingest(sample("02-management-ports-assessment"))
    fid = str(result.record["id"])
    world.store._connection().execute("DELETE FROM jobs")  # the plan job is lost (a crash on Azure)
    world.clock.advance(minutes=10)
    world.engine.sweep()
    assert world.jobs() == []  # not yet: it may still be on its way
    world.clock.advance(minutes=6)  # past INTAKE_GRACE (15m; a waiting finding may be between plan retries)
    world.engine.sweep()
    assert world.jobs() == [("plan", {"finding_ids": [fid]})]
    assert "plan_requeued" in world.events()
    world.engine.work()
    (rem,) = world.engine.pending()
    assert rem.finding_id == fid
    world.engine.reject(rem.id, world.actor(MEMBERS[0]), "not now")
    world.clock.advance(days=9)
    world.engine.sweep()
    assert world.store.inbound([fid]) == []  # forgotten 8 days after planning (its remediation is over)


def test_group_wait_gathers_a_storm_that_arrives_over_several_deliveries(tmp_path: Path) -> None:
    docs = [storage_account(f"waitacct{i}") for i in range(6)]
    for world in make_world(tmp_path, docs=docs, group_wait=timedelta(seconds=10)):
        first = world.engine.ingest([network_assessment(d["id"]) for d in docs[:3]])
        assert world.engine.work() == 1  # its plan job; the announce waits group_wait
        world.clock.advance(seconds=4)
        second = world.engine.ingest([network_assessment(d["id"]) for d in docs[3:]])
        assert world.engine.work() == 1
        assert world.chat.calls == []  # nothing posted yet: 3 + 3 are each below the threshold of 5
        assert [r.outcome for r in first + second] == ["queued"] * 6
        world.clock.advance(seconds=6)  # the first announce is due
        world.engine.work()
        ((playbook, group, members),) = world.chat.of("post_digest")
        assert (playbook, group, len(members)) == ("storage-restrict-network-access", "rg-prod-data", 6)
        assert world.chat.of("post_approval") == []
        world.clock.advance(seconds=10)
        world.engine.work()  # the second delivery's announce finds nothing left
        assert len(world.chat.calls) == 1


def test_undo_and_reask_requests_are_posted_at_once_not_held_for_a_digest(tmp_path: Path) -> None:
    for world in make_world(tmp_path, group_wait=timedelta(minutes=5)):
        rem = world.ingest_one(sample("01-storage-open-container-alert"))  # auto: approved, applied
        world.engine.work()
        assert world.rem(rem.id).state == "applied"
        decision = world.engine.request_undo(rem.id, world.actor(ADMIN))  # an auto playbook: an admin asks
        assert decision.ok
        assert decision.remediation is not None
        assert not decision.remediation.announced  # until the chat confirms its message
        world.engine.work()
        assert world.chat.of("post_approval") == [decision.remediation.id]
        assert world.rem(decision.remediation.id).announced


def test_the_sweep_forgets_counter_windows_older_than_their_retention(tmp_path: Path) -> None:
    for world in make_world(tmp_path):
        old = world.clock() - timedelta(days=3)
        recent = world.clock() - timedelta(hours=1)
        assert world.store.incr_counter("slack-post:C0REMEDIATE", old) == 1
        assert world.store.incr_counter("auto:sub", recent) == 1
        world.engine.sweep()
        assert world.store.incr_counter("slack-post:C0REMEDIATE", old) == 1  # forgotten
        assert world.store.incr_counter("auto:sub", recent) == 2  # this hour's budget is kept
