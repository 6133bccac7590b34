"""The ``Store`` contract of items 2 and 4 of issue 17, on every backend (SQLite and Table/Queue
Storage on Azurite): a state and its audit record are written together or not at all, ``audit
verify`` proves the trail complete, and a row or message that cannot be decoded is quarantined
while everything else keeps flowing."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest

from remediator.evidence.verify import verify_store
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Remediation
from remediator.lifecycle.runtime import with_state
from remediator.lifecycle.store import Store
from tests.store.conftest import Backend
from tests.store.test_contract import T0, make


def record(rem: Remediation | str, event: str, **detail: object) -> AuditEvent:
    rid = rem if isinstance(rem, str) else rem.id
    return AuditEvent(remediation_id=rid, event=event, actor="worker", at=T0, detail=detail)


def opened(store: Store, **overrides: object) -> Remediation:
    rem = make(**overrides)
    stored, created = store.create(rem, audit=with_state([record(rem, "approval_requested")], rem.state))
    assert created
    return stored


def trail(store: Store, rid: str) -> list[tuple[str, object]]:
    return [(e.event, e.detail.get("state")) for e in store.audit_log(rid)]


# -- state and trail move together ------------------------------------------------------------------


def test_create_writes_the_opening_records_with_the_remediation_and_none_when_deduplicated(store: Store) -> None:
    first = opened(store, dedup_key="k")
    assert trail(store, first.id) == [("approval_requested", "pending_approval")]
    assert [e.position for e in store.audit_log(first.id)] == [1]
    again = make(dedup_key="k")
    held, created = store.create(again, audit=record(again, "approval_requested", state="pending_approval"))
    assert (held.id, created) == (first.id, False)
    assert store.audit_log(again.id) == []  # the duplicate opened nothing, so it has no trail
    assert verify_store(store).ok


def test_create_many_writes_each_ones_records_with_it(store: Store) -> None:
    a, b, dup = make(dedup_key="a"), make(dedup_key="b"), make(dedup_key="a")
    results = store.create_many([a, b, dup], audits=[record(a, "planned", state="approved"),
                                                    [record(b, "approval_requested", state="pending_approval"),
                                                     record(b, "note")],
                                                    record(dup, "planned", state="approved")])
    assert [created for _, created in results] == [True, True, False]
    assert trail(store, a.id) == [("planned", "approved")]
    assert trail(store, b.id) == [("approval_requested", "pending_approval"), ("note", None)]
    assert store.audit_log(dup.id) == []
    with pytest.raises(ValueError, match="2 audits for 1 remediation"):
        store.create_many([make()], audits=[None, None])


def test_transition_and_update_write_their_records_only_when_they_win(store: Store) -> None:
    rem = opened(store)
    moved = store.transition(rem, "approved", from_states=("pending_approval",),
                             audit=record(rem, "approved", state="approved"))
    assert moved is not None
    lost = store.transition(rem, "rejected", from_states=("pending_approval",),  # a stale copy: lost race
                            audit=record(rem, "rejected", state="rejected"))
    assert lost is None
    noted = store.update(moved, reminded=True, audit=record(rem, "reminded"))
    assert noted is not None
    assert store.update(moved, reminded=False, audit=record(rem, "reminded again")) is None  # stale: lost
    assert trail(store, rem.id) == [("approval_requested", "pending_approval"), ("approved", "approved"),
                                    ("reminded", None)]
    assert [e.position for e in store.audit_log(rem.id)] == [1, 2, 3]
    result = verify_store(store)
    assert result.ok, result.problems
    assert (result.remediations, result.incomplete) == (1, ())


def test_a_record_about_another_remediation_is_refused_before_anything_is_written(store: Store) -> None:
    rem = opened(store)
    with pytest.raises(ValueError, match="cannot be written with that remediation"):
        store.transition(rem, "approved", from_states=("pending_approval",), audit=record("someone-else", "approved"))
    with pytest.raises(ValueError, match="cannot be written with that remediation"):
        store.create(make(), audit=AuditEvent(remediation_id=None, event="paused", actor="x", at=T0))
    got = store.get(rem.id)
    assert got is not None
    assert got.state == "pending_approval"
    assert len(store.audit_log(rem.id)) == 1


def test_a_record_that_cannot_be_stored_leaves_the_state_as_it_was(store: Store) -> None:
    rem = opened(store)
    broken = record(rem, "approved", state="approved", unstorable=object())  # not a JSON value
    with pytest.raises(TypeError):
        store.transition(rem, "approved", from_states=("pending_approval",), audit=broken)
    got = store.get(rem.id)
    assert got is not None
    assert (got.state, got.version) == ("pending_approval", rem.version)
    assert trail(store, rem.id) == [("approval_requested", "pending_approval")]
    assert store.transition(rem, "approved", from_states=("pending_approval",),
                            audit=record(rem, "approved", state="approved")) is not None


def test_records_appended_one_by_one_continue_the_chain_written_with_the_states(store: Store) -> None:
    rem = opened(store)
    for i in range(5):
        store.audit(record(rem, "change_applied", n=i))
    moved = store.transition(rem, "approved", from_states=("pending_approval",),
                             audit=record(rem, "approved", state="approved"))
    assert moved is not None
    assert [e.position for e in store.audit_log(rem.id)] == [1, 2, 3, 4, 5, 6, 7]
    assert verify_store(store).ok


def test_verify_names_a_missing_state_record_a_missing_opening_and_a_remediation_without_a_trail(
        backend: Backend) -> None:
    store = backend.store
    ok = opened(store)
    moved = opened(store)
    assert store.transition(moved, "approved", from_states=("pending_approval",),
                            audit=record(moved, "approved", state="approved")) is not None
    joined = opened(store)
    store.audit(record(joined, "finding_joined"))
    bare, _ = store.create(make())  # written without any record: the old way
    assert verify_store(store).ok is False  # (the bare one already)
    backend.delete_record(moved.id, 2)  # the "approved" record, not anchored yet
    backend.delete_record(joined.id, 1)  # the opening record
    lines = sorted(p.line() for p in verify_store(store).problems)
    assert lines == sorted([
        f"missing   {moved.id}#2: remediation {moved.id} is approved but its last state record ({moved.id}#1) "
        "says pending_approval: the record of its move to approved is missing",
        f"deleted   {joined.id}#1: missing between the start and {joined.id}#2",
        f"missing   {joined.id}#3: remediation {joined.id} is pending_approval but no record of any state: the "
        "record of its move to pending_approval is missing",
        f"deleted   {bare.id}#1: the remediation exists but its audit chain is gone (every record deleted, "
        "or never written)",
    ]), lines
    result = verify_store(store)
    assert set(result.incomplete) == {moved.id, joined.id, bare.id}
    assert ok.id not in result.incomplete


# -- quarantine -------------------------------------------------------------------------------------


def test_a_corrupt_remediation_is_quarantined_and_the_others_keep_flowing(backend: Backend) -> None:
    store = backend.store
    good, bad, other = opened(store), opened(store), opened(store, state="approved")
    backend.corrupt("remediation", bad.id)
    assert [r.id for r in store.list()] == [good.id, other.id]
    assert store.get(bad.id) is None
    assert [r.id for r in store.list(states=("pending_approval",))] == [good.id]
    (q,) = store.quarantined()
    assert (q.source, q.key) == ("remediation", bad.id)
    assert q.error.startswith("ValueError") or q.error.startswith("KeyError")
    assert '"state": ' in q.raw
    assert store.quarantine_count() == 1
    (event,) = [e for e in store.audit_log() if e.event == "quarantined"]
    assert (event.remediation_id, event.actor, event.detail["source"], event.detail["key"]) == \
        (None, "system", "remediation", bad.id)
    assert store.get(good.id) is not None
    assert store.list() == store.list()  # once moved, it is gone for good: no second quarantine entry
    assert store.quarantine_count() == 1


def test_a_corrupt_inbox_row_is_quarantined_and_left_out(backend: Backend) -> None:
    store = backend.store
    now = backend.clock()
    store.receive([Inbound(finding_id=f, finding={"id": f}, source="t", received_at=now) for f in ("f1", "f2")])
    backend.corrupt("inbox", "f1")
    assert [row.finding_id for row in store.inbound(["f1", "f2"])] == ["f2"]
    assert [(q.source, q.key) for q in store.quarantined()] == [("inbox", "f1")]


def test_a_message_that_is_not_base64_or_not_a_job_is_quarantined_and_the_next_job_returned(
        backend: Backend) -> None:
    store = backend.store
    if backend.name == "azurite":
        backend.send_raw("this is not base64 ~~~")
        backend.send_raw(base64.b64encode(b"{not json").decode())
        backend.send_raw(base64.b64encode(b'["a", "list"]').decode())
    else:
        backend.send_raw("{not json")
        backend.send_raw('["a", "list"]')
    store.enqueue(Job(kind="post", payload={"remediation_id": "r1"}))
    job = store.dequeue(visibility_seconds=30)
    assert job is not None
    assert (job.kind, dict(job.payload)) == ("post", {"remediation_id": "r1"})
    store.complete(job)
    assert store.dequeue(visibility_seconds=1) is None  # the bad ones are gone from the queue
    sources = [q.source for q in store.quarantined()]
    assert sources == ["job"] * (3 if backend.name == "azurite" else 2)
    assert all(q.key and q.error for q in store.quarantined())


def test_quarantine_is_listed_oldest_first_with_its_time(backend: Backend) -> None:
    store = backend.store
    rems = [opened(store) for _ in range(3)]
    for rem in rems:
        backend.corrupt("remediation", rem.id)
        assert store.get(rem.id) is None
    listed = store.quarantined()
    assert [q.key for q in listed] == [r.id for r in rems]
    assert all(isinstance(q.at, datetime) and q.at.tzinfo is not None for q in listed)
    assert [q.key for q in store.quarantined(limit=2)] == [r.id for r in rems[:2]]


def test_something_read_elsewhere_can_be_quarantined_directly(store: Store) -> None:
    store.quarantine(source="job", key="m-1", raw="not a job", error="not a job: expected JSON")
    (q,) = store.quarantined()
    assert (q.source, q.key, q.raw, q.error) == ("job", "m-1", "not a job", "not a job: expected JSON")
    assert [e.detail["key"] for e in store.audit_log() if e.event == "quarantined"] == ["m-1"]


def test_a_quarantined_open_remediation_gives_up_its_dedup_key(backend: Backend) -> None:
    store = backend.store
    held = opened(store, dedup_key="k")
    backend.corrupt("remediation", held.id)
    fresh = make(dedup_key="k")
    got, created = store.create(fresh)  # (Azure: the claim meets the unreadable holder, quarantines it, takes over)
    assert (got.id, created) == (fresh.id, True)
    assert [q.key for q in store.quarantined()] == [held.id]


def test_verify_names_a_trail_that_starts_with_something_other_than_its_opening(store: Store) -> None:
    rem, _ = store.create(make())  # the crash of old: written, its opening record lost, then joined
    store.audit(record(rem, "finding_joined"))
    lines = [p.line() for p in verify_store(store).problems]
    assert lines == [
        f"missing   {rem.id}#1: remediation {rem.id}: its trail starts with 'finding_joined', not the record "
        "that opened it (approval_requested, exempt, no_change, planned)",
        f"missing   {rem.id}#2: remediation {rem.id} is pending_approval but no record of any state: the record "
        "of its move to pending_approval is missing"]


def test_concurrent_moves_and_appends_on_one_chain_never_fork_it(backend: Backend) -> None:
    from tests.store.test_contract import race

    rem = opened(backend.store)
    stores = [backend.store, backend.make()]  # two workers, three threads each

    def act(i: int) -> bool:
        store = stores[i % 2 if i < 4 else (i + 1) % 2]
        if i % 2:
            store.audit(record(rem, "note", n=i))
            return False
        return store.transition(rem, "approved", from_states=("pending_approval",),
                                 audit=record(rem, "approved", state="approved", by=i)) is not None

    won = race(6, act)
    assert won.count(True) == 1  # one move wins; the others lost the race and wrote nothing
    log = backend.store.audit_log(rem.id)
    assert [e.position for e in log] == list(range(1, 6))  # the opening, one approval, three notes
    assert [e.event for e in log].count("approved") == 1
    assert verify_store(backend.store).ok


def test_a_remediation_id_that_starts_with_an_underscore_is_checked_like_any_other(backend: Backend) -> None:
    # token_urlsafe ids start with '_' or '-' one time in 32: not to be taken for a system chain
    store = backend.store
    rem = opened(store, id="_x" + make().id[1:])
    moved = store.transition(rem, "approved", from_states=("pending_approval",),
                             audit=record(rem, "approved", state="approved"))
    assert moved is not None
    assert verify_store(store).ok
    backend.delete_record(rem.id, 2)
    assert [p.kind for p in verify_store(store).problems] == ["missing"]
