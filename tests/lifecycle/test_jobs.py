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
    ("alarm", {"key": "export-silent:s:2026-11-25T12:00:00+00:00", "title": "Defender has sent nothing",
               "lines": ["Nothing arrived", "Check: the export"]},
     jobs.AlarmJob(key="export-silent:s:2026-11-25T12:00:00+00:00", title="Defender has sent nothing",
                   lines=("Nothing arrived", "Check: the export"))),
    ("resolved", {"signals": [SIGNAL], "source": "defender"},
     jobs.ResolvedJob(signals=(HealthSignal(kind="recommendation", type=SIGNAL["type"],
                                            resource_id=SIGNAL["resource_id"], id=SIGNAL["id"],
                                            reason="assessment status is Healthy"),), source="defender")),
    ("results", {"playbook": "storage-disable-public-blob-access", "attempts": 0},
     jobs.ResultsJob(playbook="storage-disable-public-blob-access")),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


@pytest.mark.parametrize(("kind", "payload", "typed"), OLD_JOBS,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(OLD_JOBS)])
def test_a_payload_of_the_previous_version_decodes_and_encodes_back_the_same(kind: str, payload: dict[str, Any],
                                                                             typed: jobs.JobPayload) -> None:
    assert jobs.decode(Job(kind=kind, payload=payload)) == typed
    encoded = jobs.encode(typed)
    assert (encoded.kind, encoded.payload) == (kind, payload)
    assert encoded.urgent == (kind in jobs.URGENT_KINDS)  # an old apply job is an automatic one's lane


def test_a_person_approved_apply_takes_the_urgent_lane_and_an_automatic_one_does_not() -> None:
    asked = jobs.encode(jobs.ApplyJob(remediation_id="r1", fingerprint="sha256:abc", asked=True))
    assert asked.urgent
    assert asked.payload["asked"] is True
    assert jobs.decode(asked) == jobs.ApplyJob(remediation_id="r1", fingerprint="sha256:abc", asked=True)
    assert not jobs.encode(jobs.ApplyJob(remediation_id="r1", fingerprint="sha256:abc")).urgent
    assert not jobs.encode(jobs.PlanJob(finding_ids=("f",))).urgent


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


def _rid(sub: int, name: str) -> str:
    return f"/subscriptions/{sub:08x}-0000-4000-8000-000000000000/resourceGroups/rg/providers/" \
           f"Microsoft.Storage/storageAccounts/{name}"


def test_plan_size_spreads_a_backlog_and_keeps_a_trickle_whole() -> None:
    assert jobs.plan_size(1) == jobs.plan_size(jobs.PLAN_MIN) == jobs.PLAN_MIN  # a trickle: one job
    assert jobs.plan_size(jobs.PLAN_MIN * jobs.PLAN_SPREAD) == jobs.PLAN_MIN
    assert jobs.plan_size(1000) == 125  # about PLAN_SPREAD jobs
    assert jobs.plan_size(100_000) == jobs.PLAN_CHUNK


def test_plan_groups_split_a_backlog_into_jobs_of_whole_resources_one_subscription_each() -> None:
    # 2 subscriptions x 100 resources, 5 findings each, interleaved as a scan returns them (by query)
    pairs = [(f"f-{kind}-{sub}-{i}", _rid(sub, f"st{i}")) for kind in range(5) for sub in (1, 2) for i in range(100)]
    chunks = list(jobs.plan_groups(pairs))
    assert len(chunks) >= jobs.PLAN_SPREAD - 1
    assert sorted(f for c in chunks for f in c) == sorted(f for f, _ in pairs)  # each finding once
    resource_of = dict(pairs)
    job_of: dict[str, int] = {}
    for n, chunk in enumerate(chunks):
        assert len(chunk) <= jobs.plan_size(len(pairs))
        assert len({resource_of[f].split("/")[2] for f in chunk}) == 1  # one subscription: one graph query
        for f in chunk:
            assert job_of.setdefault(resource_of[f], n) == n  # a resource's findings: one job
    # inside a resource, the findings keep their order (the first one opens the remediation)
    first = next(c for c in chunks if "f-0-1-0" in c)
    assert [f for f in first if resource_of[f] == _rid(1, "st0")] == [f"f-{k}-1-0" for k in range(5)]


def test_plan_groups_keep_a_trickle_in_one_job_and_split_only_an_oversized_resource() -> None:
    few = [(f"f{i}", _rid(1, f"st{i % 3}")) for i in range(12)]
    assert [len(c) for c in jobs.plan_groups(few)] == [12]
    huge = [(f"f{i}", _rid(1, "big")) for i in range(jobs.PLAN_CHUNK + 7)]
    assert [len(c) for c in jobs.plan_groups(huge)] == [jobs.PLAN_CHUNK, 7]
    wide = [("x" * 9_000 + str(i), _rid(1, f"st{i}")) for i in range(5)]
    assert [len(c) for c in jobs.plan_groups(wide)] == [2, 2, 1]  # a queue message's bytes
    assert list(jobs.plan_groups([])) == []


def test_resource_slices_cut_only_between_resources() -> None:
    items = [(f"f{k}-{i}", _rid(1 + i % 2, f"st{i}")) for k in range(3) for i in range(5)]  # query by query
    pieces = list(jobs.resource_slices(items, lambda item: item[1], 4))
    assert [len(p) for p in pieces] == [6, 6, 3]  # 3 findings a resource: a slice passes 4 to keep it whole
    assert [f for f, _ in pieces[0]] == ["f0-0", "f1-0", "f2-0", "f0-2", "f1-2", "f2-2"]
    assert {r for p in pieces for _, r in p[:1]} == {_rid(1, "st0"), _rid(1, "st4"), _rid(2, "st3")}
    one = [(f"f{i}", _rid(1, "subscription-wide")) for i in range(9)]
    assert [len(p) for p in jobs.resource_slices(one, lambda item: item[1], 4)] == [8, 1]  # cut at twice the size
