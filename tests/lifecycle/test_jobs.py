"""Typed job payloads: each kind encodes to the payload the queue has always carried, and a job
queued by the previous version (its payload written literally here) decodes and is handled."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator.lifecycle import jobs
from remediator.lifecycle.model import Job
from remediator.lifecycle.resolution import HealthSignal
from tests.support.engine import World, make_world, sample

SIGNAL = {"kind": "recommendation", "type": "8d4f3b6d-0ab1-4a8e-96f0-5e1d8f3c1a2b",
          "resource_id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n",
          "id": "/subscriptions/s/providers/Microsoft.Security/assessments/a", "principal_id": None,
          "reason": "assessment status is Healthy"}

# (the payload as the previous version queued it, literally; the typed job it is)
OLD_JOBS: list[tuple[str, dict[str, Any], jobs.JobPayload]] = [
    ("plan", {"finding_ids": ["f1", "f2"]}, jobs.PlanJob(finding_ids=("f1", "f2"))),
    ("announce", {}, jobs.AnnounceJob()),
    ("post", {"remediation_id": "r1"}, jobs.PostJob(remediation_id="r1")),
    ("post_digest", {"remediation_ids": ["r1", "r2"], "playbook": "p", "group": "(subscription)"},
     jobs.PostDigestJob(remediation_ids=("r1", "r2"), playbook="p", group="(subscription)")),
    ("update", {"remediation_id": "r1"}, jobs.UpdateJob(remediation_id="r1")),
    ("reply", {"remediation_id": "r1", "kind": "applied", "text": "Applied and verified: 1 change.",
               "undo_available": True},
     jobs.ReplyJob(remediation_id="r1", kind="applied", text="Applied and verified: 1 change.", undo_available=True)),
    ("apply", {"remediation_id": "r1", "fingerprint": "sha256:abc"}, jobs.ApplyJob(remediation_id="r1",
                                                                           fingerprint="sha256:abc")),
    ("apply", {"remediation_id": "r1", "fingerprint": None}, jobs.ApplyJob(remediation_id="r1", fingerprint=None)),
    ("resume", {}, jobs.ResumeJob()),
    ("notice", {"remediation_id": "r1", "lines": ["evidence: caller IP: 203.0.113.77", "step 1: look"]},
     jobs.NoticeJob(remediation_id="r1", lines=("evidence: caller IP: 203.0.113.77", "step 1: look"))),
    ("resolved", {"signals": [SIGNAL], "source": "defender"},
     jobs.ResolvedJob(signals=(HealthSignal(kind="recommendation", type=SIGNAL["type"],
                                            resource_id=SIGNAL["resource_id"], id=SIGNAL["id"],
                                            reason="assessment status is Healthy"),), source="defender")),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


@pytest.mark.parametrize(("kind", "payload", "typed"), OLD_JOBS,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(OLD_JOBS)])
def test_a_payload_of_the_previous_version_decodes_and_encodes_back_the_same(kind: str, payload: dict[str, Any],
                                                                             typed: jobs.JobPayload) -> None:
    assert jobs.decode(Job(kind=kind, payload=payload)) == typed
    assert jobs.encode(typed) == Job(kind=kind, payload=payload)


def test_every_kind_is_covered_and_named_once() -> None:
    assert set(jobs.KINDS) == {kind for kind, _, _ in OLD_JOBS}
    assert all(kind == cls.KIND for kind, cls in jobs.KINDS.items())


def test_older_and_partial_payloads_take_the_defaults() -> None:
    assert jobs.decode(Job(kind="reply", payload={"remediation_id": "r1", "kind": "info", "text": "t"})) == \
        jobs.ReplyJob(remediation_id="r1", kind="info", text="t", undo_available=False)
    assert jobs.decode(Job(kind="resolved", payload={"signals": [SIGNAL, "not a signal", 3]})) == \
        jobs.ResolvedJob(signals=(HealthSignal.from_json(SIGNAL),), source="defender")
    assert jobs.decode(Job(kind="resolved", payload={})) == jobs.ResolvedJob(signals=(), source="defender")


def test_an_unknown_kind_is_none_and_a_payload_that_is_not_its_kinds_is_an_error() -> None:
    assert jobs.decode(Job(kind="frobnicate", payload={"remediation_id": "r1"})) is None
    with pytest.raises(jobs.JobError, match=r"^apply job: the payload has no 'remediation_id'$"):
        jobs.decode(Job(kind="apply", payload={"fingerprint": "x"}))
    with pytest.raises(jobs.JobError, match=r"^reply job: kind 'exploded'; valid: applied, expired, failed, info, "):
        jobs.decode(Job(kind="reply", payload={"remediation_id": "r1", "kind": "exploded", "text": "t"}))
    with pytest.raises(jobs.JobError, match="a list of ids, got str"):
        jobs.decode(Job(kind="plan", payload={"finding_ids": "f1"}))


def test_a_malformed_job_is_left_to_be_retried_until_it_is_poison(world: World) -> None:
    with pytest.raises(jobs.JobError):
        world.engine.handle(Job(kind="post", payload={}))
    world.engine.handle(Job(kind="post", payload={}, dequeue_count=world.settings.max_deliveries + 1))
    assert world.trail()[-1].event == "job_dropped"
    assert world.trail()[-1].detail["kind"] == "post"


def test_jobs_queued_by_the_previous_version_are_handled(world: World) -> None:
    rem = world.ingest_one(sample("02-management-ports-assessment"))  # a Slack playbook: pending
    assert rem.state == "pending_approval"
    world.engine.work()
    world.store.enqueue(Job(kind="reply", payload={"remediation_id": rem.id, "kind": "info",
                                                   "text": "queued before the upgrade", "undo_available": False}))
    f = rem.finding
    world.store.enqueue(Job(kind="resolved", payload={
        "signals": [{"kind": f["kind"], "type": f["type"], "resource_id": rem.resource_id, "id": "a1",
                     "principal_id": None, "reason": "assessment status is Healthy"}],
        "source": "defender"}))
    world.engine.work()
    assert ("info", "queued before the upgrade", False) in world.chat.results(rem.id)
    withdrawn = world.rem(rem.id)
    assert withdrawn.state == "withdrawn"
    assert withdrawn.error == "defender reports it resolved: assessment status is Healthy"


def test_plan_chunks_cap_ids_and_bytes() -> None:
    assert [len(c) for c in jobs.plan_chunks(f"f{i}" for i in range(1001))] == [500, 500, 1]
    big = ["x" * 9_000] * 5
    assert [len(c) for c in jobs.plan_chunks(big)] == [2, 2, 1]
    assert list(jobs.plan_chunks([])) == []
