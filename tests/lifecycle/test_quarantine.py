"""One bad row stops nothing (issue 17, item 4): a remediation whose stored document is garbage is
quarantined by whichever read meets it first (announce, list, the sweep, the report, reconcile),
audited, counted by ``doctor`` and ``/remediate status``, and every healthy remediation keeps flowing.
Then ``Worker.poison`` against a store that fails: the poison job still completes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediator.app import doctor
from remediator.azure.graph import ScanResult
from remediator.evidence.period import parse_period
from remediator.evidence.report import build_report
from remediator.lifecycle.jobs import ApplyJob, encode
from remediator.lifecycle.model import Job, Remediation
from tests.support.engine import MEMBERS, SUB, World, make_world, network_assessment, storage_account

STEPS = ("announce", "list", "sweep", "report", "reconcile")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, storm_threshold=0)  # one message per request: each one visible


def _pending(world: World, n: int) -> list[Remediation]:
    out = []
    for i in range(n):
        doc = storage_account(f"quarantine{i}")
        world.arm.add(doc)
        out.append(world.ingest_one([network_assessment(doc["id"])]))
    assert {r.state for r in out} == {"pending_approval"}
    return out


def _corrupt(world: World, rid: str) -> None:
    """Garbage in the doc column, written by another client of the file."""
    conn = sqlite3.connect(world.store.path)
    conn.execute("UPDATE remediations SET doc = ? WHERE id = ?", ('{"id": "half a document', rid))
    conn.commit()
    conn.close()


def test_a_corrupt_row_is_quarantined_by_each_reader_and_the_healthy_ones_keep_flowing(world: World) -> None:
    rems = _pending(world, len(STEPS) + 2)
    healthy = {rems[-2].id, rems[-1].id}
    bad = iter(rems)
    expected_quarantine: list[str] = []

    def corrupt_next() -> None:
        rid = next(bad).id
        _corrupt(world, rid)
        expected_quarantine.append(rid)

    corrupt_next()
    world.engine.work()  # the announce job: posts every healthy request
    posted = set(world.chat.of("post_approval"))
    assert posted == {r.id for r in rems} - set(expected_quarantine)

    corrupt_next()
    assert {r.id for r in world.engine.pending()} == {r.id for r in rems} - set(expected_quarantine)

    corrupt_next()
    world.engine.sweep()

    corrupt_next()
    now = world.clock()
    report = build_report(world.store, parse_period("2026-Q4", now=now), now=now, playbook_controls={})
    assert report.totals()["remediations"] == len(rems) - len(expected_quarantine)

    corrupt_next()
    withdrawn = world.engine.reconcile(ScanResult(subscriptions=frozenset({SUB.lower()})))
    assert {r.id for r in withdrawn} == healthy  # healthy in the scan: their requests are withdrawn

    assert [q.key for q in world.store.quarantined()] == expected_quarantine
    assert {q.source for q in world.store.quarantined()} == {"remediation"}
    audited = [e.detail["key"] for e in world.trail() if e.event == "quarantined"]
    assert audited == expected_quarantine
    assert world.engine.quarantined() == len(STEPS)
    checks = doctor.check_store(world.settings, lambda _url: world.store, close=False)
    (line,) = [c.line() for c in checks if not c.ok]
    assert "quarantine" in line
    assert f"{len(STEPS)} stored rows or queued messages could not be decoded" in line


def test_the_sqlite_serve_loop_keeps_working_past_a_corrupt_row(world: World) -> None:
    a, b = _pending(world, 2)
    world.engine.work()
    assert world.engine.approve(b.id, world.actor(MEMBERS[0])).ok
    _corrupt(world, a.id)
    for _ in range(3):  # what ``serve`` does each round
        world.engine.sweep()
        world.engine.work()
    assert world.rem(b.id).state in ("approved", "applied")
    assert [q.key for q in world.store.quarantined()] == [a.id]


class _FailingStore:
    """The world's store with every write failing (an outage that outlasts the job's deliveries)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if name in {"transition", "update", "audit", "mark_planned", "enqueue", "create"}:
            def fail(*args: Any, **kwargs: Any) -> Any:
                raise OSError(f"storage outage (injected) in {name}")

            return fail
        return value


def test_poison_completes_its_job_when_every_store_call_fails(world: World) -> None:
    rem = _pending(world, 1)[0]
    world.engine.work()
    world.store.enqueue(encode(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint or "")))
    world.store.enqueue(Job(kind="plan", payload={"finding_ids": [rem.finding_id]}))
    world.store.enqueue(Job(kind="apply", payload={"not": "an apply job"}))
    conn = sqlite3.connect(world.store.path)  # each delivered max_deliveries times already
    conn.execute("UPDATE jobs SET dequeue_count = ?", (world.settings.max_deliveries,))
    conn.commit()
    conn.close()
    worker = world.engine._worker
    real = worker.rt.store
    object.__setattr__(worker.rt, "store", _FailingStore(real))  # the worker's writes fail; the queue works
    try:
        assert world.engine.work() == 3  # each poison job handled without raising, so each is completed
    finally:
        object.__setattr__(worker.rt, "store", real)
    assert world.jobs() == []  # none left to be redelivered forever
    assert world.rem(rem.id).state == "pending_approval"  # nothing could be written, nothing half-written


def test_a_poison_apply_job_fails_its_remediation_with_the_reason(world: World) -> None:
    rem = _pending(world, 1)[0]
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    worker = world.engine._worker
    worker.handle(Job(kind="apply", payload={"remediation_id": rem.id, "fingerprint": rem.fingerprint},
                      id="j", receipt="r", dequeue_count=world.settings.max_deliveries + 1))
    got = world.rem(rem.id)
    assert got.state == "failed"
    assert got.error == (f"gave up after {world.settings.max_deliveries + 1} deliveries of the apply job "
                         "(the worker crashed or timed out each time)")
    assert [(e.event, e.detail.get("state")) for e in world.trail(rem.id)][-1] == ("failed", "failed")
