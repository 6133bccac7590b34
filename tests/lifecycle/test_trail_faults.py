"""A storage outage between a state change and its audit record, on Table Storage (Azurite).

Before issue 17 a state change and its record were two requests: an outage that began right after
the first left a remediation opened without its opening record, or approved without its approval
record, and ``audit verify`` still said OK. Now both are one entity-group transaction (one request):
either both are stored or neither, and verify proves the trail complete.

The outage is injected into the store's own HTTP session (the real SDK clients, real requests to
Azurite): a ``requests`` adapter that refuses every write once it is down, going down right after
the first write that touches the remediations table succeeded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from remediator.azure.reader import LiveState
from remediator.config.settings import Settings
from remediator.evidence.verify import verify_store
from remediator.lifecycle.approval import Actor
from remediator.lifecycle.engine import Engine
from remediator.lifecycle.jobs import ApplyJob, encode
from remediator.privilege.elevation import StandingElevator
from remediator.store.azure import AzureStore
from remediator.testing import FakeArm
from tests.support.azurite import azurite_connection_string, drop_store  # noqa: F401 - registers the fixture
from tests.support.engine import (
    ADMIN,
    MEMBERS,
    ONCALL,
    PLAYBOOKS,
    ROLES,
    SUB,
    TEAM,
    FakeClock,
    RecordingChat,
    StaticDirectory,
    network_assessment,
    sample,
    sample_state,
    storage_account,
)

WRITES = frozenset({"POST", "PUT", "MERGE", "PATCH", "DELETE"})


class Outage(HTTPAdapter):
    """Refuses every write while ``down``; ``after_first_write_to(name)`` takes it down right after the
    next write whose URL or body names ``name`` was answered (for ``refuse`` writes, then it is back;
    None: until the test says)."""

    def __init__(self) -> None:
        super().__init__(pool_maxsize=16, max_retries=0)
        self.down = False
        self.trigger: str | None = None
        self.refused: list[str] = []
        self.refuse: int | None = None

    def after_first_write_to(self, name: str, *, refuse: int | None = None) -> None:
        self.trigger, self.refuse = name, refuse

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        write = (request.method or "") in WRITES
        if write and self.down:
            self.refused.append(f"{request.method} {request.url}")
            if self.refuse is not None:
                self.refuse -= 1
                self.down = self.refuse > 0
            raise ConnectionRefusedError("storage outage (injected)")
        response = super().send(request, *args, **kwargs)
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        if write and self.trigger and response.status_code < 300 and \
                (self.trigger in (request.url or "") or self.trigger.encode() in body):
            self.down, self.trigger = True, None
        return response


@dataclass
class AzureWorld:
    engine: Engine
    store: AzureStore
    outage: Outage
    arm: FakeArm
    conn: str
    engine_chat: RecordingChat


@pytest.fixture
def world(azurite_connection_string: str) -> Iterator[AzureWorld]:  # noqa: F811 - the fixture imported above
    prefix = "trail" + uuid.uuid4().hex[:10]
    clock = FakeClock()
    settings = Settings(slack_team_id=TEAM, admins=(ADMIN,), slack_channel="C0REMEDIATE", approver_roles=ROLES)
    outage = Outage()
    with FakeArm() as arm, AzureStore(azurite_connection_string, prefix=prefix, clock=clock,
                                         lost_answer_waits=()) as store:  # an outage raises at once
        store._session.mount("http://", outage)  # the store's own session: every table and queue request
        arm.load(sample_state())
        clients = arm.clients()
        # the planners' management SDKs load on first use: here, not in a test's own time
        clients.network(SUB), clients.storage(SUB)
        chat = RecordingChat()
        engine = Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(clients),
                        clients=clients, elevator=StandingElevator(), chat=chat,
                        directory=StaticDirectory({ONCALL: MEMBERS}), clock=clock)
        try:
            yield AzureWorld(engine=engine, store=store, outage=outage, arm=arm, conn=azurite_connection_string,
                             engine_chat=chat)
        finally:
            outage.down = False
    drop_store(azurite_connection_string, prefix)


def _open(world: AzureWorld) -> str:
    received = world.engine.ingest(sample("02-management-ports-assessment"))
    return str(received[0].record["id"])


def _approver() -> Actor:
    return Actor(user_id=MEMBERS[0], team_id=TEAM, enterprise_id=None, name="member")


def test_an_outage_right_after_the_opening_write_leaves_the_remediation_with_its_opening_record(
        world: AzureWorld) -> None:
    finding = _open(world)
    world.outage.after_first_write_to(world.store.prefix + "remediations")
    with pytest.raises(ConnectionRefusedError):
        world.engine.plan([finding])  # the plan job fails after the remediation was written: redelivered later
    assert world.outage.refused  # the outage did hit a later write of the job
    world.outage.down = False
    (rem,) = world.store.list()
    assert [(e.event, e.detail.get("state")) for e in world.store.audit_log(rem.id)] == \
        [("approval_requested", "pending_approval")]
    result = verify_store(world.store)
    assert result.ok, [p.line() for p in result.problems]
    assert (result.remediations, result.incomplete) == (1, ())


def test_an_outage_right_after_the_approval_write_leaves_the_approval_with_its_record(world: AzureWorld) -> None:
    world.engine.plan([_open(world)])
    (rem,) = world.store.list()
    world.outage.after_first_write_to(world.store.prefix + "remediations")
    with pytest.raises(ConnectionRefusedError):
        world.engine.approve(rem.id, _approver())  # approved; queueing the apply job fails
    world.outage.down = False
    assert world.store.get(rem.id).state == "approved"  # type: ignore[union-attr]
    events = [(e.event, e.detail.get("state")) for e in world.store.audit_log(rem.id)]
    assert events == [("approval_requested", "pending_approval"), ("approved", "approved")]
    assert verify_store(world.store).ok


def test_an_outage_that_refuses_the_write_itself_leaves_neither_state_nor_record(world: AzureWorld) -> None:
    world.engine.plan([_open(world)])
    (rem,) = world.store.list()
    world.outage.down = True
    with pytest.raises(ConnectionRefusedError):
        world.engine.approve(rem.id, _approver())
    world.outage.down = False
    assert world.store.get(rem.id).state == "pending_approval"  # type: ignore[union-attr]
    assert [e.event for e in world.store.audit_log(rem.id)] == ["approval_requested"]
    assert verify_store(world.store).ok
    decision = world.engine.approve(rem.id, _approver())  # once storage is back, the click works
    assert decision.ok
    assert [e.event for e in world.store.audit_log(rem.id)] == ["approval_requested", "approved"]
    assert verify_store(world.store).ok


def test_an_outage_after_the_write_landed_delays_the_apply_and_the_recovery_records_one_applied(
        world: AzureWorld) -> None:
    """Issue 17: the trail write after the ARM write failed (one refused request, then storage was
    back) and the apply ended ``failed`` although the change was written. A store fault decides
    nothing: the job is delivered again and recovers from ``applying``, with no second write."""
    doc = storage_account("azurelanded")
    world.arm.add(doc)
    world.engine.plan([str(r.record["id"]) for r in world.engine.ingest([network_assessment(doc["id"])])])
    (rem,) = world.store.list()
    assert len(rem.changes) == 1
    assert world.engine.approve(rem.id, _approver()).ok
    world.outage.after_first_write_to('"elevated"', refuse=1)  # the record after it: "change_applied"
    world.engine.work()  # the apply job raises; it stays in the queue (hidden for its visibility timeout)
    assert world.outage.refused
    assert not world.outage.down
    assert world.store.get(rem.id).state == "applying"  # type: ignore[union-attr]
    events = [e.event for e in world.store.audit_log(rem.id)]
    assert "failed" not in events
    assert "change_applied" not in events
    world.engine.handle(encode(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint)))  # its redelivery
    world.engine.work()  # the reply
    after = world.store.get(rem.id)
    assert after is not None
    assert after.state == "applied", after.error
    writes = [r for r in world.arm.resource_writes if 200 <= r.status < 300]
    assert len(writes) == 1, [(r.method, r.path) for r in writes]  # written once, by the first delivery
    trail = world.store.audit_log(rem.id)
    applied = [e for e in trail if e.event == "applied"]
    assert len(applied) == 1
    assert applied[0].detail.get("recovered") is True
    assert [k for k, _, _ in world.engine_chat.results(rem.id)] == ["applied"]
    result = verify_store(world.store)
    assert result.ok, [p.line() for p in result.problems]


# -- one bad row or message stops nothing, on Table and Queue Storage -----------------------------------------


def test_a_broken_entity_and_a_broken_message_are_quarantined_while_the_engine_works_on(world: AzureWorld) -> None:
    import base64

    from azure.data.tables import UpdateMode
    from azure.storage.queue import QueueClient

    from remediator.store.azure import _safe_key

    docs = [storage_account(f"azurequarantine{i}") for i in range(2)]
    for doc in docs:
        world.arm.add(doc)
    received = world.engine.ingest([network_assessment(doc["id"]) for doc in docs])
    world.engine.plan([str(r.record["id"]) for r in received])
    bad, good = sorted(world.store.list(), key=lambda r: r.resource_id != docs[0]["id"])
    table = world.store._tables["remediations"]
    entity = table.get_entity(_safe_key(bad.id), "r")
    entity["Doc"] = '{"id": "half a document'
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    with QueueClient.from_connection_string(world.conn, f"{world.store.prefix}-jobs") as plain:  # no encoding
        plain.send_message("%%% not base64 %%%")
        plain.send_message(base64.b64encode(b"{not json").decode())
    world.engine.work()  # announce, posts, and the junk: nothing raises
    world.engine.sweep()
    assert [r.id for r in world.engine.pending()] == [good.id]
    sources = sorted(q.source for q in world.store.quarantined())
    assert sources.count("remediation") == 1
    assert sources.count("job") == 2
    assert any(q.key == bad.id for q in world.store.quarantined())
    assert world.engine.quarantined() == len(sources)
