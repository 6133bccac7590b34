"""Fencing, not hope; outages delay, never drop (issue 17, the ARM and planning part).

Each test reproduces a defect of the chaos run against the real parts: two ``Engine`` workers on
one SQLite file (two store objects, as two processes have), the real SDK clients against FakeArm
(which stalls a request, drops an answer or answers 503 where the test says), the shipped
playbooks and samples. Failed before the fix:

* a write slower than the lease let a second worker write the same change again;
* a worker that stalled past its lease (a paused process) wrote after another took over;
* a write whose answer was lost (connection dropped, read timeout) ended ``failed`` although it landed;
* a 503 while planning recorded ``plan_error`` and the finding was never planned again;
* a plan job that ran twice opened a second remediation for one finding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from remediator.actions.base import REGISTRY, Action, GrantNeed
from remediator.actions.change import Change
from remediator.app.demo import DEMO_EXECUTOR
from remediator.azure.lro import write
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.jobs import PLAN_RETRIES, plan_backoff
from remediator.privilege.elevation import Grant, StandingElevator, Ticket
from remediator.store import SQLiteStore
from remediator.testing import FakeArm
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    PLAYBOOKS,
    TEAM,
    RecordingChat,
    World,
    make_world,
    network_assessment,
    sample,
    sample_state,
    storage_account,
)

ACCOUNT_PATCH = "storageaccounts/contosoweb"  # sample 01's first write: the account (the container is second)


class PausingElevator(StandingElevator):
    """The standing strategy, except that the first elevation stops the worker until ``resume`` is
    set, as a process paused (a long GC, a frozen VM) between its check and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.calls = 0

    def elevate(self, *, action: Action[Any], change: Change, ticket: Ticket,
                need: GrantNeed | None = None) -> Grant:
        self.calls += 1
        if self.calls == 1:
            self.paused.set()
            assert self.resume.wait(10), "the test never resumed the paused worker"
        return super().elevate(action=action, change=change, ticket=ticket)


def _settings(**overrides: Any) -> Settings:
    return Settings(**{"slack_team_id": TEAM, "admins": (ADMIN,), "executor_principal_id": DEMO_EXECUTOR,
                       "slack_channel": "C0REMEDIATE", "group_wait": timedelta(0), **overrides})


def _second_worker(world: World, tmp_path: Path) -> Iterator[Engine]:
    """Another worker on the same store file (its own store object), FakeArm and clock."""
    with SQLiteStore(tmp_path / "remediator.db", clock=world.clock) as store:
        clients = world.arm.clients()
        yield Engine(store=store, settings=world.settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                     clients=clients, elevator=StandingElevator(), chat=RecordingChat(), clock=world.clock)


# -- fencing ----------------------------------------------------------------------------------------


@pytest.mark.slow(reason="leases renew on the real clock: the write is held for twice the lease")
def test_two_workers_a_write_slower_than_the_lease_is_made_once(tmp_path: Path) -> None:
    settings = _settings(lock_ttl=timedelta(seconds=1.2))  # renewed every 0.4 s; wide enough for a busy machine
    with FakeArm() as arm, SQLiteStore(tmp_path / "s.db") as store_a, SQLiteStore(tmp_path / "s.db") as store_b:
        arm.load(sample_state())
        workers = []
        for store in (store_a, store_b):
            clients = arm.clients()
            workers.append(Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                                  clients=clients, elevator=StandingElevator(), chat=RecordingChat()))
        first, second = workers
        (received,) = first.ingest(sample("01-storage-open-container-alert"))
        first.plan([str(received.record["id"])])
        (rem,) = first.store.list()
        assert rem.state == "approved"
        store_a._connection().execute("DELETE FROM jobs WHERE kind = 'plan'")  # planned above
        arm.stall("PATCH", ACCOUNT_PATCH, seconds=2.5)  # twice the lease; it lands at the end
        a = threading.Thread(target=first.work, kwargs={"max_jobs": 1})
        a.start()
        while a.is_alive():  # the other worker tries all it can meanwhile: the sweep, the queue
            second.sweep()
            second.work()
            time.sleep(0.05)
        a.join()
        done = second.get(rem.id)
        assert done is not None
        assert done.state == "applied"
        # each of the two changes written once, by the lease holder (before: the account twice)
        assert [(w.method, w.status) for w in arm.resource_writes] == [("PATCH", 200)] * 2
        assert len({w.path for w in arm.resource_writes}) == 2
        events = [e.event for e in second.audit_trail(rem.id)]
        assert "lease_lost" not in events
        assert "apply_requeued" not in events  # the sweep saw the lease held
        # the job stayed hidden while it ran (its visibility extended), so the other worker never got
        # it (it would have found the lease busy and queued it again for later)
        assert store_a._connection().execute("SELECT COUNT(*) FROM jobs WHERE kind = 'apply'").fetchone()[0] == 0


def test_a_worker_that_stalled_past_its_lease_never_writes_after_another_took_over(tmp_path: Path) -> None:
    elevator = PausingElevator()
    for world in make_world(tmp_path, elevator=elevator):
        for other in _second_worker(world, tmp_path):
            rem = world.ingest_one(sample("01-storage-open-container-alert"))
            a = threading.Thread(target=world.engine.work, kwargs={"max_jobs": 1})
            a.start()
            assert elevator.paused.wait(10)  # applying, paused right before its first write
            assert world.rem(rem.id).state == "applying"
            world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)  # lease and visibility ran out
            assert other.work() >= 1  # the job, redelivered: recovered and applied by the new lease holder
            assert world.rem(rem.id).state == "applied"
            assert len(world.arm.resource_writes) == 2
            elevator.resume.set()
            a.join(10)
            assert not a.is_alive()
            assert len(world.arm.resource_writes) == 2  # the stalled worker wrote nothing: fenced out
            lost = [e for e in world.trail(rem.id) if e.event == "lease_lost"]
            assert len(lost) == 1
            assert "taken over" in lost[0].detail["reason"] or "expired" in lost[0].detail["reason"]
            assert world.rem(rem.id).state == "applied"
            assert [e.event for e in world.trail(rem.id)].count("applied") == 1


def test_recovery_of_a_killed_apply_takes_one_lease_at_default_settings(tmp_path: Path) -> None:
    assert Settings().lock_ttl <= timedelta(minutes=2)  # the promise: recovered within 2 minutes
    elevator = PausingElevator()
    for world in make_world(tmp_path, elevator=elevator):
        assert world.settings.lock_ttl == Settings().lock_ttl
        for other in _second_worker(world, tmp_path):
            rem = world.ingest_one(sample("01-storage-open-container-alert"))
            a = threading.Thread(target=world.engine.work, kwargs={"max_jobs": 1})
            a.start()
            assert elevator.paused.wait(10)  # "killed" here: it never renews again
            world.clock.advance(seconds=59)
            assert other.work() == 0  # neither the job nor the lease is free yet
            world.clock.advance(seconds=2)  # 61 s after the last renewal
            other.work()
            assert world.rem(rem.id).state == "applied"
            elevator.resume.set()
            a.join(10)
            assert len(world.arm.resource_writes) == 2


# -- lost answers -------------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


def test_a_write_that_landed_but_whose_connection_dropped_is_verified_not_failed(world: World) -> None:
    world.arm.stall("PATCH", ACCOUNT_PATCH, land_first=True, drop=True)
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    assert len(world.arm.resource_writes) == 2  # the dropped one landed: not written again
    (lost,) = [e for e in world.trail(rem.id) if e.event == "write_answer_lost"]
    assert lost.detail["landed"] is True
    assert "ServiceResponseError" in lost.detail["error"]


def test_a_write_that_never_landed_is_written_again_under_the_same_lease(world: World) -> None:
    world.arm.stall("PATCH", ACCOUNT_PATCH, drop=True)  # the connection is gone before it is served
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
    account = [w for w in world.arm.resource_writes if w.path.lower().endswith(ACCOUNT_PATCH)]
    assert [w.status for w in account] == [200]  # the first never reached the resource; the retry did
    (lost,) = [e for e in world.trail(rem.id) if e.event == "write_answer_lost"]
    assert lost.detail["landed"] is False


def test_a_write_whose_answer_came_after_the_read_timeout_is_verified(tmp_path: Path) -> None:
    for world in make_world(tmp_path):
        clients = world.arm.clients(read_timeout=0.3)
        engine = Engine(store=world.store, settings=world.settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=StandingElevator(), chat=world.chat, clock=world.clock)
        world.arm.stall("PATCH", ACCOUNT_PATCH, land_first=True, seconds=0.8)
        (received,) = engine.ingest(sample("01-storage-open-container-alert"))
        engine.work()
        (rem,) = world.store.list()
        assert rem.finding_id == received.record["id"]
        assert rem.state == "applied"
        assert len(world.arm.resource_writes) == 2
        (lost,) = [e for e in world.trail(rem.id) if e.event == "write_answer_lost"]
        assert lost.detail["landed"] is True


# -- planning under outages -----------------------------------------------------------------------------


def test_a_503_while_planning_is_retried_with_backoff_not_recorded_as_an_error(world: World) -> None:
    world.arm.fail_next("GET", "contosoweb", 503)
    (received,) = world.engine.ingest(sample("01-storage-open-container-alert"))
    world.engine.work()
    assert "plan_error" not in world.events()
    assert world.store.list() == []
    (row,) = world.store.inbound([str(received.record["id"])])
    assert row.waiting  # not planned: it waits for the retry
    assert [(k, p.get("attempt")) for k, p in world.jobs()] == [("plan", 1)]
    retry = [e for e in world.trail() if e.event == "plan_retry"]
    assert retry[0].detail["delay_seconds"] == plan_backoff(0)
    world.clock.advance(seconds=plan_backoff(0))
    world.engine.work()
    (rem,) = world.store.list()
    assert rem.state == "applied"


def test_a_plan_that_keeps_failing_is_a_loud_plan_error_and_planned_again_on_the_next_delivery(
        world: World) -> None:
    world.arm.fail_next("GET", "contosoweb", 503, times=PLAN_RETRIES + 1)
    records = sample("01-storage-open-container-alert")
    (received,) = world.engine.ingest(records)
    for attempt in range(PLAN_RETRIES + 1):
        assert world.engine.work() == 1
        world.clock.advance(seconds=plan_backoff(attempt))
    assert world.jobs() == []
    (error,) = [e for e in world.trail() if e.event == "plan_error"]
    assert error.detail["attempts"] == PLAN_RETRIES + 1
    assert error.detail["transient"] is True
    assert f"after {PLAN_RETRIES + 1} attempts" in error.detail["reason"]
    assert world.store.list() == []
    (again,) = world.engine.ingest(records)  # the next delivery, or the reconcile's scan
    assert again.outcome == "queued"
    world.engine.work()
    (rem,) = world.store.list()
    assert rem.finding_id == received.record["id"]
    assert rem.state == "applied"


def test_a_plan_job_run_twice_at_once_opens_one_remediation(tmp_path: Path) -> None:
    for world in make_world(tmp_path):
        for other in _second_worker(world, tmp_path):
            (received,) = world.engine.ingest(sample("01-storage-open-container-alert"))
            fid = str(received.record["id"])
            held = threading.Event()
            stuck = world.arm.stall("GET", "contosoweb", until=held)  # the first run's state read hangs
            a = threading.Thread(target=world.engine.plan, args=([fid],))
            a.start()
            assert stuck.wait(10)
            other.plan([fid])  # the redelivered job, meanwhile: plans, opens, and its apply runs
            other.work()
            (rem,) = world.store.list()
            assert rem.state == "applied"
            held.set()
            a.join(10)
            assert [r.id for r in world.store.list()] == [rem.id]  # the first run opened nothing more
            events = [e.event for e in world.trail()]
            assert events.count("planned") == 1
            assert "finding_joined" not in events
            assert len(world.arm.resource_writes) == 2


def test_a_plan_job_of_several_findings_run_twice_records_no_finding_as_joined(tmp_path: Path) -> None:
    """The second run of a job of two findings recognised only the last as its own reception (it compared
    every remediation with the last one it planned) and audited the first as a finding that joined."""
    docs = [storage_account(f"twice{i}", rg=f"rg-twice-{i}") for i in range(2)]
    for world in make_world(tmp_path, docs=docs):
        for other in _second_worker(world, tmp_path):
            fids = [str(r.record["id"]) for r in world.engine.ingest([network_assessment(d["id"]) for d in docs])]
            held = threading.Event()
            stuck = world.arm.stall("GET", "twice1", until=held)  # the first run's last state read hangs
            a = threading.Thread(target=world.engine.plan, args=(fids,))
            a.start()
            assert stuck.wait(10)
            other.plan(fids)  # the redelivered job, meanwhile: plans and opens both
            held.set()
            a.join(10)
            assert len(world.store.list()) == 2
            events = [e.event for e in world.trail()]
            assert events.count("approval_requested") == 2
            assert "finding_joined" not in events


# -- writes conditional on the plan's ETag ------------------------------------------------------------------


@pytest.mark.parametrize(("meanwhile", "ends"), [
    ({"tags": {"owner": "ml-platform"}}, "applied"),  # elsewhere: the same plan, written again on the new ETag
    ({"properties": {"networkAcls": {"defaultAction": "Deny"}}}, "no_change"),  # someone else fixed it
], ids=["elsewhere", "fixed"])
def test_a_write_refused_on_the_plans_etag_is_rechecked_not_failed(tmp_path: Path, meanwhile: dict[str, Any],
                                                                   ends: str) -> None:
    account = next(d for d in sample_state() if d["type"] == "Microsoft.CognitiveServices/accounts")
    account = {**account, "etag": '"0d00a1b2-0000-0100-0000-6750a1b20000"'}  # as ARM returns it
    for world in make_world(tmp_path, docs=[account]):
        rem = world.ingest_one(sample("08-openai-public-network-assessment"))
        assert rem.state == "pending_approval"
        assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
        release = threading.Event()
        stuck = world.arm.stall("PATCH", "cognitiveservices/accounts", until=release)
        a = threading.Thread(target=world.engine.work)
        a.start()
        assert stuck.wait(10)  # re-checked, written with If-Match, held on its way
        # someone else writes the account meanwhile, through the same API: a new ETag
        write(world.arm.clients(), "PATCH", account["id"], REGISTRY["cognitive.restrict-network-access"].api_version,
              body=meanwhile)
        release.set()
        a.join(10)
        ended = world.rem(rem.id)
        assert ended.state == ends, ended.error
        ours = [w for w in world.arm.resource_writes if w.headers.get("If-Match")]
        assert (ours[0].status, ours[0].headers["If-Match"]) == (412, account["etag"])  # refused, not written
        assert [w.status for w in ours[1:]] == ([202] if ends == "applied" else [])
        events = world.events(rem.id)
        assert "failed" not in events
        assert events.count("write_conflict") == 1


def test_the_sweep_leaves_an_apply_whose_lease_a_live_worker_holds(world: World) -> None:
    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    job = world.store.dequeue()
    assert job is not None
    world.store.complete(job)  # taken by a worker that is still at it (a long write), renewing its lease
    key = "resource:" + rem.resource_id.lower()
    token = world.store.acquire_lease(key, "worker:busy", world.settings.lock_ttl.total_seconds())
    assert token is not None
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds())
    assert world.store.renew_lease(key, "worker:busy", token, world.settings.lock_ttl.total_seconds())
    assert world.engine.sweep() == 0  # not lost: someone holds it
    assert world.jobs() == []
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)  # that worker died
    assert world.engine.sweep() == 1
    world.engine.work()
    assert world.rem(rem.id).state == "applied"


def test_planning_says_a_finding_it_will_retry_is_retried(world: World) -> None:
    world.arm.fail_next("GET", "contosoweb", 503)
    (received,) = world.engine.ingest(sample("01-storage-open-container-alert"))
    (planned,) = world.engine.plan([str(received.record["id"])])
    assert (planned.outcome, planned.remediation) == ("retry", None)
    assert planned.reason.endswith(f"planned again in {plan_backoff(0):.0f} s")
    assert "503" in planned.reason


def test_a_recovery_overtaken_by_the_first_worker_records_no_state_after_its_end(world: World) -> None:
    """A delivery recovering an apply stuck in ``applying`` re-reads the resource; meanwhile the first
    worker (paused, not dead) wakes and moves the remediation to ``applied``. The recovery must not
    then record "applying" after "applied" (``audit verify`` flagged two such trails in the chaos run),
    nor write: its start is a compare-and-set on the remediation it read."""
    from remediator.evidence.verify import verify_store
    from remediator.lifecycle.model import AuditEvent, Job
    from remediator.lifecycle.runtime import with_state

    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    assert rem.state == "approved"
    store = world.engine.store
    world.engine.store._connection().execute("DELETE FROM jobs WHERE kind = 'apply'")  # type: ignore[attr-defined]
    started = AuditEvent(remediation_id=rem.id, event="applying", actor="worker", at=world.clock())
    applying = store.transition(rem, "applying", from_states=("approved",), audit=with_state([started], "applying"))
    assert applying is not None  # the first worker started, then stopped answering
    release = threading.Event()
    stuck = world.arm.stall("GET", ACCOUNT_PATCH, until=release)  # the recovery's re-read of the account
    recovery = threading.Thread(target=world.engine.handle,
                                args=(Job(kind="apply", payload={"remediation_id": rem.id,
                                                                 "fingerprint": rem.fingerprint}),))
    recovery.start()
    try:
        assert stuck.wait(10)
        # the first worker wakes: its writes had landed, it records the end
        ended = AuditEvent(remediation_id=rem.id, event="applied", actor="worker", at=world.clock())
        assert store.transition(applying, "applied", from_states=("applying",),
                                audit=with_state([ended], "applied")) is not None
    finally:
        release.set()
        recovery.join(20)
    assert world.rem(rem.id).state == "applied"
    states = [e.detail.get("state") for e in world.trail(rem.id) if e.detail.get("state")]
    assert states[-1] == "applied", states
    assert world.arm.resource_writes == []  # the recovery wrote nothing: it was no longer applying
    assert verify_store(store).ok


def test_an_apply_that_finds_its_resource_held_follows_the_other_apply_promptly(world: World) -> None:
    """Two changes of one resource (two playbooks): the second looked again 5 s later, however short the
    first; now it looks after 0.5 s, doubling up to 5 s while the resource stays held."""
    from remediator import ids
    from remediator.lifecycle.applying import LOCK_RETRY_FIRST, LOCK_RETRY_SECONDS

    rem = world.ingest_one(sample("01-storage-open-container-alert"))
    assert rem.state == "approved"  # auto: its apply job is queued
    key = "resource:" + ids.key(rem.resource_id)
    assert world.store.acquire_lease(key, "another-apply", 60) is not None
    delays = []
    for _ in range(6):
        world.engine.work()
        ((kind, payload),) = world.jobs()
        assert kind == "apply"
        delays.append(LOCK_RETRY_FIRST * 2 ** (payload["busy"] - 1))
        assert world.engine.work() == 0  # not visible before its delay
        world.clock.advance(seconds=min(LOCK_RETRY_SECONDS, delays[-1]))
    assert [min(LOCK_RETRY_SECONDS, d) for d in delays] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    world.store.release_lock(key, "another-apply")
    world.engine.work()
    assert world.rem(rem.id).state == "applied"
