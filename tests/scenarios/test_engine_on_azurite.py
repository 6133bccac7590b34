"""The engine on the scale-out store: Azure Table + Queue Storage (Azurite), same stories as SQLite.

The store contract suite proves each operation on both backends; these prove the engine's
guarantees end to end on Table/Queue Storage: 50 concurrent Approve clicks make exactly one
apply, a redelivered finding opens nothing new, drift after approval writes nothing and asks
again, and the auto path applies and verifies.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.chat import SharedPacer, SlackChat, worker_client
from remediator.app.demo import DEMO_BROKER, DEMO_EXECUTOR
from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.model import Job, Remediation
from remediator.privilege.elevation import PimAssignElevator, StandingElevator
from remediator.store.azure import AzureStore
from remediator.testing import FakeArm
from remediator.testing.fake_slack import FakeSlack
from tests.support.azurite import azurite_connection_string  # noqa: F401 - registers the session fixture
from tests.support.clock import VirtualTime
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    NSG_RULE,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    TEAM,
    StaticDirectory,
    network_assessment,
    sample,
    sample_state,
    storage_account,
)


class AzureWorld:
    def __init__(self, engine: Engine, store: AzureStore, arm: FakeArm) -> None:
        self.engine, self.store, self.arm = engine, store, arm

    def actor(self, user: str) -> Actor:
        return Actor(user_id=user, team_id=TEAM, name=user.lower())


@pytest.fixture
def world(azurite_connection_string: str) -> Iterator[AzureWorld]:  # noqa: F811 - the fixture by name
    settings = Settings(approver_roles=ROLES, slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                        slack_channel="C0REMEDIATE", group_wait=timedelta(0))
    with FakeArm() as arm, AzureStore(azurite_connection_string, prefix="e" + uuid.uuid4().hex[:12]) as store:
        arm.load(sample_state())
        arm.enforce_grants(DEMO_EXECUTOR)  # every write needs a PIM grant on its resource
        clients = arm.clients(principal_id=DEMO_EXECUTOR)
        elevator = PimAssignElevator(broker=arm.clients(principal_id=DEMO_BROKER), executor_principal_id=DEMO_EXECUTOR,
                                     poll_interval=0.01, sleep=lambda _s: None)
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=elevator, directory=StaticDirectory({ONCALL: MEMBERS}))
        yield AzureWorld(engine, store, arm)


def _opened(world: AzureWorld, name: str) -> Remediation:
    """Ingest a sample, let the worker plan it (the plan job on the queue), return its remediation."""
    (result,) = world.engine.ingest(sample(name))
    assert result.outcome == "queued"
    world.engine.work()
    (row,) = world.store.inbound([str(result.record["id"])])
    assert not row.waiting
    assert row.remediation_id is not None
    rem = world.engine.get(row.remediation_id)
    assert rem is not None
    return rem


def _pending(world: AzureWorld) -> str:
    rem = _opened(world, "02-management-ports-assessment")
    assert rem.state == "pending_approval"
    assert not rem.announced  # this engine has no chat: no message was confirmed
    return rem.id


@pytest.mark.slow(reason="49 refused approvers audit into one hash chain on Azurite: each append conflict is a round "
                        "trip to the emulator")
def test_fifty_concurrent_approvals_make_one_apply_on_table_storage(world: AzureWorld) -> None:
    rid = _pending(world)
    barrier = threading.Barrier(50)
    oks: list[bool] = []
    lock = threading.Lock()

    def click(user: str) -> None:
        barrier.wait()
        decision = world.engine.approve(rid, world.actor(user))
        with lock:
            oks.append(decision.ok)

    threads = [threading.Thread(target=click, args=(u,)) for u in MEMBERS[:50]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert oks.count(True) == 1
    world.engine.work()
    rem = world.engine.get(rid)
    assert rem is not None
    assert rem.state == "applied"
    assert len(world.arm.resource_writes) == 3  # the plan's three rule changes, once
    assert len(world.arm.pim_grants(DEMO_EXECUTOR, active_only=False)) == 3  # one grant per change
    assert [e.event for e in world.engine.audit_trail(rid)].count("applied") == 1


def test_a_redelivered_finding_opens_nothing_new(world: AzureWorld) -> None:
    rid = _pending(world)
    again = world.engine.ingest(sample("02-management-ports-assessment"))
    assert [r.outcome for r in again] == ["duplicate"]  # answered on arrival: its remediation is open
    assert world.engine.work() == 0  # nothing queued for it
    assert [r.id for r in world.engine.pending()] == [rid]


def test_drift_after_approval_writes_nothing_and_asks_again(world: AzureWorld) -> None:
    rid = _pending(world)
    assert world.engine.approve(rid, world.actor(MEMBERS[0])).ok
    rule = world.arm.get(NSG_RULE)
    assert rule is not None
    rule["properties"]["sourceAddressPrefix"] = "0.0.0.0/0"  # someone edits the rule after the approval
    world.arm.add(rule)
    world.engine.work()
    rem = world.engine.get(rid)
    assert rem is not None
    assert rem.state == "stale"
    assert world.arm.writes == []
    (new,) = world.engine.pending()
    assert new.id != rid
    assert new.fingerprint != rem.fingerprint


def test_the_auto_path_applies_and_verifies(world: AzureWorld) -> None:
    opened = _opened(world, "01-storage-open-container-alert")  # the worker also ran its apply
    rem = world.engine.get(opened.id)
    assert rem is not None
    assert rem.state == "applied"
    assert len(world.arm.resource_writes) == 2


class _Later:
    """Real time plus an offset a test moves on (the store's leases; the queue keeps the server's time)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_a_worker_that_lost_its_lease_never_writes_on_table_storage(azurite_connection_string: str) -> None:  # noqa: F811
    """Two workers on one Azurite: the first is paused while its PIM grant request is on its way
    (past its lease); the second runs the apply again (as the sweep queues it) and applies it; the
    first, resumed, is fenced out before its write and releases the grant it got."""
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), executor_principal_id=DEMO_EXECUTOR,
                        slack_channel="C0REMEDIATE", group_wait=timedelta(0))
    clock = _Later()
    prefix = "f" + uuid.uuid4().hex[:12]
    with FakeArm() as arm, AzureStore(azurite_connection_string, prefix=prefix, clock=clock) as store_a, \
            AzureStore(azurite_connection_string, prefix=prefix, clock=clock) as store_b:
        arm.load(sample_state())
        arm.enforce_grants(DEMO_EXECUTOR)
        engines = []
        for store in (store_a, store_b):
            clients = arm.clients(principal_id=DEMO_EXECUTOR)
            elevator = PimAssignElevator(broker=arm.clients(principal_id=DEMO_BROKER),
                                         executor_principal_id=DEMO_EXECUTOR, poll_interval=0.01,
                                         sleep=lambda _s: None)
            engines.append(Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                                  clients=clients, elevator=elevator, clock=clock))
        first, second = engines
        (received,) = first.ingest(sample("01-storage-open-container-alert"))
        first.work(max_jobs=1)  # planned: auto, approved, its apply job queued
        (row,) = store_a.inbound([str(received.record["id"])])
        assert row.remediation_id is not None
        rem_id = row.remediation_id
        # the first apply job: the first worker's PIM request is held on its way, past the lease
        release = threading.Event()
        stuck = arm.stall("PUT", "roleAssignmentScheduleRequests", until=release)
        a = threading.Thread(target=first.work)
        a.start()
        assert stuck.wait(20)
        clock.offset += settings.lock_ttl + timedelta(seconds=1)
        rem = second.get(rem_id)
        assert rem is not None
        assert rem.state == "applying"
        second.handle(Job(kind="apply", payload={"remediation_id": rem_id, "fingerprint": rem.fingerprint}))
        done = second.get(rem_id)
        assert done is not None
        assert done.state == "applied"
        assert len(arm.resource_writes) == 2
        release.set()
        a.join(20)
        assert len(arm.resource_writes) == 2  # the first worker wrote nothing
        events = [e.event for e in second.audit_trail(rem_id)]
        assert events.count("lease_lost") == 1
        assert events.count("applied") == 1
        assert arm.pim_grants(DEMO_EXECUTOR) == []  # the late grant was released, not left behind


@pytest.mark.slow(reason="three workers on one Azurite: every post's intent and ref is a Table round trip")
def test_three_workers_post_each_request_once_on_table_storage(azurite_connection_string: str) -> None:  # noqa: F811
    """Three instances (each its own AzureStore and SlackChat) announce and post the same requests at
    once: each request gets one message (the intent to post is a compare-and-set on the entity),
    and the channel's pace is shared through the store's counters."""
    prefix = "p" + uuid.uuid4().hex[:12]
    pace = VirtualTime(start=1_700_000_000.0)
    with FakeSlack(team_id=TEAM) as slack, FakeArm() as arm:
        settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), slack_channel="C0REMEDIATE",
                            slack_bot_token=slack.token, slack_api_url=slack.base_url, group_wait=timedelta(0),
                            storm_threshold=0)
        docs = [storage_account(f"race{i:02d}", rg=f"rg-race-{i}") for i in range(6)]
        arm.load(sample_state())
        arm.load(docs)
        clients = arm.clients()
        stores = [AzureStore(azurite_connection_string, prefix=prefix) for _ in range(3)]
        try:
            engines = [Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                              clients=clients, elevator=StandingElevator(), clock=lambda: datetime.now(UTC),
                              chat=SlackChat(worker_client(settings, sleep=pace.sleep, jitter=0), settings,
                                             pacer=SharedPacer(store, clock=pace.monotonic, sleep=pace.sleep)))
                       for store in stores]
            engines[0].ingest([network_assessment(d["id"]) for d in docs])
            engines[0].work(max_jobs=1)  # the plan job: six requests, and an announce
            for engine in engines[1:]:
                engine.store.enqueue(Job(kind="announce", payload={}))  # two more announcers
            threads = [threading.Thread(target=engine.work, kwargs={"threads": 2}) for engine in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            pending = engines[0].pending()
            assert len(pending) == 6
            for rem in pending:
                tagged = [m for m in slack.messages("C0REMEDIATE")
                          if m["metadata"]["event_payload"]["remediation_id"] == rem.id]
                assert len(tagged) == 1, rem.id
                assert rem.announced
                assert rem.message["ts"] == tagged[0]["ts"]
            sent = [at for engine in engines for _, at in engine._rt.chat.pacer.sent]  # type: ignore[union-attr]
            assert len(sent) == 6
            assert len({int(at) for at in sent}) == 6  # one per second across the three
        finally:
            for store in stores:
                store.close()
