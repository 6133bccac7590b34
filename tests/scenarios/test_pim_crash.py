"""A worker dies holding a PIM grant: the trail tells the truth and the grant is released.

Real parts (tests/bot/world.py): FakeArm enforces that the executor writes only under a PIM grant
that the broker asks for (``PimAssignElevator``, ``AdminAssign``), the store is SQLite. The crash
is the state a killed worker leaves: the apply moved to ``applying``, its grant request recorded
(``grant_requested``) and made, and then nothing more (no release, no ``applied``). The sweep
finds it after ``lock_ttl`` and re-queues the apply; that delivery recovers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator.actions import REGISTRY
from remediator.app.demo import DEMO_EXECUTOR
from remediator.lifecycle.approval import Actor, approvals
from remediator.lifecycle.codec import change_from_json
from remediator.lifecycle.model import Remediation
from remediator.privilege.elevation import Ticket
from tests.bot.world import SlackWorld, make_slack_world
from tests.support.engine import MEMBERS, TEAM, sample


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SlackWorld]:
    yield from make_slack_world(tmp_path)


def approved(world: SlackWorld) -> Remediation:
    (rem,) = world.ingest(sample("05-storage-network-assessment"))
    assert len(rem.changes) == 1
    world.engine.work()
    assert world.engine.approve(rem.id, Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None,
                                              name="alice")).ok
    now = world.rem(rem.id)
    assert now.state == "approved"
    return now


def crash_holding_a_grant(world: SlackWorld, rem: Remediation, *, write: bool) -> str:
    """What a worker killed after its grant (and, with ``write``, after its write) leaves behind."""
    rt = world.engine._rt
    applier = world.engine._worker.applier
    applying = rt.move(rem, "applying", from_states=("approved",))
    assert applying is not None
    rt.audit(rem.id, "applying", "worker", fingerprint=rem.fingerprint, changes=len(rem.changes))
    change = change_from_json(rem.changes[0])
    action = REGISTRY[change.action]
    request_id = applier._request_id(applying, action.name, change, ())
    assert request_id is not None
    grant = rt.elevator.elevate(action=action, change=change, ticket=Ticket(
        remediation_id=rem.id, fingerprint=rem.fingerprint, approvers=tuple(v.user_id for v in approvals(rem)),
        request_id=request_id))
    rt.audit(rem.id, "elevated", "worker", **grant.audit())
    if write:
        rt.elevator.run(grant, lambda: action.apply(rt.clients, change), clients=rt.clients)
    return request_id  # … and the process is gone


def recover(world: SlackWorld) -> None:
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)
    assert world.engine.sweep() >= 1  # the stuck apply is re-queued
    world.engine.work()


def details(world: SlackWorld, rid: str, event: str) -> list[dict[str, Any]]:
    return [dict(e.detail) for e in world.engine.audit_trail(rid) if e.event == event]


def assume_no_lie(world: SlackWorld, rid: str) -> None:
    for released in details(world, rid, "released"):
        assert released["status"] != "Kept", released
        assert "existed before" not in released["detail"]
    for elevated in details(world, rid, "elevated"):
        assert elevated["status"] != "AlreadyActive", elevated
        assert elevated["request_id"]


def status(world: SlackWorld, rid: str) -> str:
    resp = world.command(f"status {rid}", MEMBERS[0])
    assert resp.status == 200
    return str(json.loads(resp.body)["text"])


def test_a_grant_left_by_a_crash_before_the_write_is_resumed_as_ours_and_released(world: SlackWorld) -> None:
    rem = approved(world)
    request_id = crash_holding_a_grant(world, rem, write=False)
    assert len(world.arm.pim_grants(DEMO_EXECUTOR)) == 1  # alive: nobody released it
    assert f"PIM grant request {request_id} is not released" in status(world, rem.id)  # listed meanwhile
    recover(world)
    assert "PIM grant" not in status(world, rem.id)
    assert world.rem(rem.id).state == "applied"
    assert len(world.arm.resource_writes) == 1  # written once, by the recovery, under the same grant
    assert [g.ended for g in world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)] == ["removed"]  # one grant
    assert [r["request_id"] for r in details(world, rem.id, "grant_requested")] == [request_id]  # recorded first
    assert {e["request_id"] for e in details(world, rem.id, "elevated")} == {request_id}
    (released,) = details(world, rem.id, "released")
    assert released["grant_request_id"] == request_id
    assert released["status"] == "Revoked"
    assume_no_lie(world, rem.id)
    events = [e.event for e in world.engine.audit_trail(rem.id)]
    assert events.index("grant_requested") < events.index("elevated")  # the id is in the trail before the ask


def test_a_grant_left_by_a_crash_after_the_write_is_released_by_the_recovery(world: SlackWorld) -> None:
    rem = approved(world)
    request_id = crash_holding_a_grant(world, rem, write=True)
    recover(world)
    assert world.rem(rem.id).state == "applied"  # recovered: verified, not written again
    assert len(world.arm.resource_writes) == 1
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []
    (released,) = details(world, rem.id, "released")
    assert released["grant_request_id"] == request_id
    assert released["leftover"] is True
    assert released["status"] == "Revoked"
    assume_no_lie(world, rem.id)


def test_a_request_recorded_but_never_made_is_made_under_its_recorded_id(world: SlackWorld) -> None:
    rem = approved(world)
    rt = world.engine._rt
    applying = rt.move(rem, "applying", from_states=("approved",))
    assert applying is not None
    change = change_from_json(rem.changes[0])
    request_id = world.engine._worker.applier._request_id(applying, change.action, change, ())
    assert request_id is not None  # recorded; the worker died before the PUT
    recover(world)
    assert world.rem(rem.id).state == "applied"
    (put,) = [r for r in world.arm.requests if r.method == "PUT" and "roleassignmentschedulerequests" in r.path.lower()
              and r.body["properties"]["requestType"] == "AdminAssign"]
    assert put.path.rstrip("/").rsplit("/", 1)[-1] == request_id
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []
    assume_no_lie(world, rem.id)


def test_a_poisoned_apply_releases_what_its_deliveries_left(world: SlackWorld) -> None:
    rem = approved(world)
    request_id = crash_holding_a_grant(world, rem, write=False)
    world.engine._worker.applier.fail(world.rem(rem.id), "gave up after 6 deliveries of the apply job")
    assert world.rem(rem.id).state == "failed"
    assert world.arm.pim_grants(DEMO_EXECUTOR) == []
    (released,) = details(world, rem.id, "released")
    assert (released["grant_request_id"], released["leftover"]) == (request_id, True)
