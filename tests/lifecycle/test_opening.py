"""Opening a remediation: ``build`` returns the decision and, for an automatic playbook that must
ask a human, why; ``opened`` audits that reason (no state kept between the two)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.azure.reader import LiveState
from remediator.findings.model import Finding
from remediator.lifecycle.opening import auto_refusal, build, dedup_key, opened, opening_records
from remediator.lifecycle.runtime import PAUSE_FLAG, Runtime
from remediator.privilege.elevation import StandingElevator
from tests.support.engine import PLAYBOOKS, World, make_world, sample


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, auto_budget_per_hour=1)


def _runtime(world: World) -> Runtime:
    clients = world.arm.clients()
    return Runtime(store=world.store, settings=world.settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                   clients=clients, elevator=StandingElevator(), clock=world.clock)


def _finding() -> Finding:
    (finding,) = sample("01-storage-open-container-alert")  # storage-disable-public-blob-access: auto, low risk
    assert isinstance(finding, Finding)
    return finding


def test_build_returns_the_refusal_and_opened_audits_it(world: World) -> None:
    rt = _runtime(world)
    finding = _finding()
    result = rt.planner().plan_one(finding)
    first = build(rt, finding, result)  # within the budget of 1
    assert (first.remediation.state, first.refusal) == ("approved", None)
    second = build(rt, finding, result)  # the budget is counted by build, before the store deduplicates
    assert second.remediation.state == "pending_approval"
    assert second.refusal is not None
    assert second.refusal.startswith("the auto-remediation budget of 1 per hour for subscription ")
    assert second.remediation.approvers == world.settings.admins
    assert second.remediation.dedup_key == first.remediation.dedup_key == dedup_key(result.playbook or "",
                                                                                      finding.resource_id)
    records = opening_records(rt, second.remediation, result.reason, actor="defender", refusal=second.refusal)
    stored, created = world.store.create(second.remediation, audit=records)
    assert created
    opened(rt, stored)
    (event,) = world.trail(stored.id)  # written with the remediation, saying the state it opened in
    assert (event.event, event.detail["reason"], event.detail["plan"], event.detail["state"]) == \
        ("approval_requested", second.refusal, result.reason, "pending_approval")


def test_paused_auto_playbooks_ask_and_say_so(world: World) -> None:
    rt = _runtime(world)
    finding = _finding()
    world.store.set_flag(PAUSE_FLAG, "U0ADMIN0001 now")
    opening = build(rt, finding, rt.planner().plan_one(finding))
    assert (opening.remediation.state, opening.refusal) == ("pending_approval", "auto-remediation is paused")
    # no refusal passed: the reason is worked out again
    stored, _ = world.store.create(opening.remediation,
                                   audit=opening_records(rt, opening.remediation, "plan", actor="defender"))
    assert world.trail(stored.id)[-1].detail["reason"] == "auto-remediation is paused"
    playbook = PLAYBOOKS.get("storage-disable-public-blob-access")
    assert auto_refusal(rt, playbook, "high") == \
        "only low-risk playbooks with approval: auto are applied without asking"


def test_a_remediation_id_never_starts_with_a_dash() -> None:
    """Ids are typed on command lines (``remediator audit ID``): one starting with ``-`` was read by
    argparse as an option ("unrecognized arguments"), one demo run in 32. Random and derived ids alike."""
    from remediator.lifecycle.opening import new_id, remediation_id

    derived = [remediation_id(f"gen-{i}", "finding", "playbook") for i in range(2000)]
    random_ids = [new_id() for _ in range(2000)]
    for rid in derived + random_ids:
        assert len(rid) == 22
        assert not rid.startswith("-"), rid
        assert set(rid) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert any(rid.startswith("_") for rid in derived)  # the folded first character (about 2 in 64)
    assert len(set(derived)) == len(derived)


def test_audit_of_an_id_that_starts_with_an_underscore_is_read_as_an_id(tmp_path: Path) -> None:
    import io

    from remediator.app.cli import main
    from remediator.lifecycle.model import AuditEvent
    from remediator.lifecycle.runtime import with_state
    from remediator.store import SQLiteStore
    from tests.store.test_contract import make

    with SQLiteStore(tmp_path / "r.db") as store:
        rem = make(id="_76HNv64SpcGsZQZgG0m1Q")
        opened = AuditEvent(remediation_id=rem.id, event="approval_requested", actor="defender", at=rem.created_at)
        store.create(rem, audit=with_state([opened], "pending_approval"))
    out = io.StringIO()
    assert main(["audit", rem.id, "--store", str(tmp_path / "r.db")], out=out) == 0
    assert rem.id in out.getvalue()
