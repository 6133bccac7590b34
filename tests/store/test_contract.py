"""The ``Store`` contract, run against every backend (SQLite and Table/Queue Storage on Azurite)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest

from remediator.lifecycle.model import (
    FINAL_STATES,
    OPEN_STATES,
    STATES,
    TRANSITIONS,
    ApprovalVote,
    AuditEvent,
    ForbiddenTransition,
    Inbound,
    Job,
    Remediation,
    State,
)
from remediator.lifecycle.store import Store
from tests.store.conftest import Backend, unique

T = TypeVar("T")
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make(**overrides: Any) -> Remediation:
    rid = overrides.pop("id", None) or unique()
    values: dict[str, Any] = {
        "id": rid,
        "dedup_key": f"storage-disable-public-blob-access|/subscriptions/s/resourcegroups/rg/{rid}",
        "finding_id": "f-" + rid,
        "finding": {"id": "f-" + rid, "kind": "recommendation", "title": "Storage account public access"},
        "playbook": "storage-disable-public-blob-access",
        "risk": "low",
        "resource_id": f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{rid}",
        "subscription_id": "s",
        "state": "pending_approval",
        "changes": ({"operation": "update", "before": {"allowBlobPublicAccess": True},
                     "after": {"allowBlobPublicAccess": False}},),
        "fingerprint": "f" * 64,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Remediation(**values)


def race(n: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn(i)`` for i in range(n) on n threads released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


# -- remediations ----------------------------------------------------------------------------------


def test_round_trip_of_every_field(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    rem = make(
        finding={"id": "f1", "title": "Ünïcödé ✓ <!channel> 🚨", "nested": {"list": [1, 2.5, None, True, "x"]}},
        changes=({"operation": "update", "before": {"a": [1, {"b": "ç"}]}, "after": {"a": []}, "note": "n"},
                 {"operation": "delete", "before": {"id": "x"}, "after": None}),
        approvers=("U123", "S456"),
        quorum=2,
        votes=(ApprovalVote(user_id="U1", team_id="T1", enterprise_id=None, at=T0),
               ApprovalVote(user_id="U2", team_id=None, enterprise_id="E1", at=T0.astimezone(plus2),
                            decision="reject", reason="not now — ünïcode")),
        requester="U9",
        created_at=T0.astimezone(plus2),
        updated_at=T0 + timedelta(microseconds=1),
        expires_at=T0 + timedelta(hours=4),
        reminded=True,
        message={"channel": "C1", "ts": "1700000000.000100"},
        error="boom ✗",
        undo_of="r-previous",
        attempt=3,
        announced=True,
    )
    stored, created = store.create(rem)
    assert created
    assert stored.version
    assert stored == dataclasses.replace(rem, version=stored.version)
    got = store.get(rem.id)
    assert got == stored
    assert got is not None
    assert got.created_at.tzinfo is not None
    assert got.created_at.utcoffset() == timedelta(0)


def test_get_of_an_unknown_id_is_none(store: Store) -> None:
    assert store.get("nope") is None


def test_a_second_create_with_the_same_key_returns_the_open_one(store: Store) -> None:
    first, created = store.create(make(dedup_key="k"))
    assert created
    second, created = store.create(make(dedup_key="k", finding_id="other"))
    assert not created
    assert second == first
    assert [r.id for r in store.list()] == [first.id]


def test_the_key_is_free_again_once_the_open_one_is_final(store: Store) -> None:
    first, _ = store.create(make(dedup_key="k"))
    done = store.transition(first, "rejected", from_states={"pending_approval"})
    assert done is not None
    second, created = store.create(make(dedup_key="k"))
    assert created
    assert second.id != first.id
    third, created = store.create(make(dedup_key="k"))
    assert not created
    assert third.id == second.id


@pytest.mark.parametrize("state", ["no_change", "exempt"])
def test_final_state_creates_do_not_take_the_slot(store: Store, state: State) -> None:
    a, created_a = store.create(make(dedup_key="k", state=state))
    b, created_b = store.create(make(dedup_key="k", state=state))
    assert created_a
    assert created_b
    assert a.id != b.id
    opened, created = store.create(make(dedup_key="k"))
    assert created
    assert opened.state == "pending_approval"


def test_a_retried_create_of_the_same_remediation_is_deduplicated(store: Store) -> None:
    rem = make()
    first, _ = store.create(rem)
    again, created = store.create(rem)
    assert not created
    assert again == first


def test_the_same_create_after_the_remediation_ended_returns_it_and_opens_nothing(store: Store) -> None:
    rem = make()
    first, _ = store.create(rem)
    ended = store.transition(first, "rejected", from_states=("pending_approval",))
    assert ended is not None
    again, created = store.create(rem)  # a plan job that ran twice: the second run's create
    assert not created
    assert (again.id, again.state) == (rem.id, "rejected")
    assert [r.id for r in store.list()] == [rem.id]
    other, fresh = store.create(make(dedup_key=rem.dedup_key))  # the slot is free for another remediation
    assert fresh
    assert other.id != rem.id
    final = make(state="no_change")
    store.create(final)
    twice, created = store.create(final)
    assert not created
    assert twice.id == final.id


def test_a_different_remediation_with_an_existing_id_is_refused(store: Store) -> None:
    rem, _ = store.create(make(state="no_change"))
    with pytest.raises(ValueError, match="already exists"):
        store.create(make(id=rem.id, dedup_key="another"))


def test_concurrent_creates_of_one_key_open_one_remediation(store: Store) -> None:
    results = race(20, lambda i: store.create(make(dedup_key="storm", finding_id=f"f{i}")))
    winners = [r for r, created in results if created]
    assert len(winners) == 1
    assert {r.id for r, _ in results} == {winners[0].id}


def test_create_many_returns_one_result_per_input_and_dedups_inside_the_batch(store: Store) -> None:
    existing, _ = store.create(make(dedup_key="k0"))
    batch = [make(dedup_key="k0"), make(dedup_key="k1"), make(dedup_key="k1"), make(dedup_key="k2", state="exempt"),
             make(dedup_key="k2")]
    results = store.create_many(batch)
    assert [created for _, created in results] == [False, True, False, True, True]
    assert results[0][0].id == existing.id
    assert results[2][0].id == results[1][0].id == batch[1].id
    assert store.create_many([]) == []
    for rem, _ in results:
        assert store.get(rem.id) == rem


def test_transition_is_a_compare_and_set(backend: Backend) -> None:
    store = backend.store
    rem, _ = store.create(make())
    assert store.transition(dataclasses.replace(rem, version="bogus"), "approved",
                            from_states={"pending_approval"}) is None
    assert store.transition(rem, "applying", from_states={"approved"}) is None
    assert store.transition(rem, "approved", from_states=()) is None
    vote = ApprovalVote(user_id="U1", team_id="T1", enterprise_id=None, at=T0)
    before = backend.clock()
    approved = store.transition(rem, "approved", from_states={"pending_approval"}, votes=(vote,))
    assert approved is not None
    assert approved.state == "approved"
    assert approved.votes == (vote,)
    assert approved.version != rem.version
    assert approved.updated_at >= before - timedelta(seconds=1)
    assert store.get(rem.id) == approved
    # the old copy has lost, whatever it asks for
    assert store.transition(rem, "rejected", from_states={"pending_approval"}) is None
    assert store.transition(rem, "failed", from_states={"approved", "pending_approval"}) is None
    applying = store.transition(approved, "applying", from_states={"approved"}, attempt=1,
                                updated_at=T0 + timedelta(days=1))
    assert applying is not None
    assert applying.attempt == 1
    assert applying.updated_at == T0 + timedelta(days=1)
    assert store.get(rem.id) == applying


def test_transition_and_update_refuse_unknown_and_frozen_fields(store: Store) -> None:
    rem, _ = store.create(make())
    with pytest.raises(TypeError, match="no field"):
        store.transition(rem, "approved", from_states={"pending_approval"}, colour="red")
    for name in ("id", "version", "dedup_key", "state"):
        with pytest.raises(TypeError, match="cannot be updated"):
            store.update(rem, **{name: "x"})
    with pytest.raises(ValueError, match="unknown state"):
        store.transition(rem, "aproved", from_states={"pending_approval"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown state"):
        store.list(states=["pending"])  # type: ignore[list-item]
    assert store.get(rem.id) == rem


@pytest.mark.slow(reason="fifty threads racing on one remediation, on each backend")
def test_fifty_concurrent_approvals_have_exactly_one_winner(backend: Backend) -> None:
    rem, _ = backend.store.create(make())
    stores = [backend.store, backend.make()]  # two store objects: two workers on one database

    def approve(i: int) -> Remediation | None:
        vote = ApprovalVote(user_id=f"U{i}", team_id="T", enterprise_id=None, at=T0)
        return stores[i % 2].transition(rem, "approved", from_states={"pending_approval"}, votes=(vote,))

    results = race(50, approve)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = backend.store.get(rem.id)
    assert stored == winners[0]
    assert stored is not None
    assert stored.state == "approved"
    assert len(stored.votes) == 1


def test_no_move_reopens_a_remediation_so_its_dedup_slot_stays_given_up(store: Store) -> None:
    failed, _ = store.create(make(dedup_key="k", state="failed"))
    other, _ = store.create(make(dedup_key="k"))
    with pytest.raises(ForbiddenTransition, match=r"transition failed -> pending_approval is not allowed "
                                                  r"\(from failed: nothing: it is final\)"):
        store.transition(failed, "pending_approval", from_states={"failed"})
    assert store.get(failed.id) == failed
    closed = store.transition(other, "expired", from_states={"pending_approval"})
    assert closed is not None
    with pytest.raises(ForbiddenTransition):  # the key is free now: still refused
        store.transition(failed, "pending_approval", from_states={"failed"})
    again, created = store.create(make(dedup_key="k"))
    assert created
    assert {r.id for r in store.list(states=OPEN_STATES)} == {again.id}


def test_the_store_makes_every_move_of_the_table_and_refuses_every_other_before_writing(store: Store) -> None:
    kept = {state: store.create(make(state=state))[0] for state in STATES}
    for source in STATES:
        for target in STATES:
            if target in TRANSITIONS[source]:
                rem, _ = store.create(make(state=source))
                moved = store.transition(rem, target, from_states=(source,), error=f"{source}>{target}")
                assert moved is not None, (source, target)
                assert store.get(rem.id) == moved
                assert (moved.state, moved.error) == (target, f"{source}>{target}")
                continue
            with pytest.raises(ForbiddenTransition, match=f"transition {source} -> {target} is not allowed"):
                store.transition(kept[source], target, from_states=(source,), error="written")
            assert store.get(kept[source].id) == kept[source], (source, target)
    # every from-state must allow the move, not just the stored one
    approved = kept["approved"]
    with pytest.raises(ForbiddenTransition, match="transition applied -> failed"):
        store.transition(approved, "failed", from_states=("approved", "applied"))
    assert store.get(approved.id) == approved
    failed = store.transition(approved, "failed", from_states=("planned", "pending_approval", "approved", "applying"))
    assert failed is not None
    assert failed.state == "failed"


def test_update_is_a_compare_and_set_that_keeps_the_state(store: Store) -> None:
    rem, _ = store.create(make())
    updated = store.update(rem, reminded=True, message={"channel": "C9", "ts": "1.2"})
    assert updated is not None
    assert updated.reminded
    assert updated.message == {"channel": "C9", "ts": "1.2"}
    assert updated.state == rem.state
    assert updated.version != rem.version
    assert store.get(rem.id) == updated
    assert store.update(rem, reminded=False) is None
    assert store.update(dataclasses.replace(updated, version="nope"), reminded=False) is None
    assert store.get(rem.id) == updated


def test_list_by_state_in_creation_order(store: Store) -> None:
    a, _ = store.create(make(state="pending_approval"))
    b, _ = store.create(make(state="no_change"))
    c, _ = store.create(make(state="approved"))
    d, _ = store.create(make(state="pending_approval"))
    assert [r.id for r in store.list()] == [a.id, b.id, c.id, d.id]
    assert [r.id for r in store.list(states=["pending_approval"])] == [a.id, d.id]
    assert [r.id for r in store.list(states=OPEN_STATES)] == [a.id, c.id, d.id]
    assert [r.id for r in store.list(states=FINAL_STATES)] == [b.id]
    assert [r.id for r in store.list(states={"no_change", "approved"})] == [b.id, c.id]
    assert store.list(states=[]) == []
    assert [r.id for r in store.list(limit=2)] == [a.id, b.id]
    assert store.list(states=["pending_approval"])[1] == d


def test_unannounced_lists_keys_of_pending_requests_not_yet_announced_oldest_first(store: Store) -> None:
    first, _ = store.create(make(id="u1-" + unique()))
    second, _ = store.create(make(id="u2-" + unique()))
    store.create(make(state="approved"))  # not pending: never listed
    store.create(make(announced=True))  # announced already
    assert store.unannounced() == [(first.id, first.dedup_key), (second.id, second.dedup_key)]
    assert store.unannounced(limit=1) == [(first.id, first.dedup_key)]
    # an intent to post is a field like any other: the request stays listed until the post is confirmed
    intent = store.update(first, posting={"tag": f"request:{first.id}", "attempts": 1, "outcome": "pending"})
    assert intent is not None
    assert intent.posting == {"tag": f"request:{first.id}", "attempts": 1, "outcome": "pending"}
    assert store.unannounced()[0] == (first.id, first.dedup_key)
    posted = store.update(intent, announced=True, message={"channel": "C1", "ts": "1.000001"}, posting={})
    assert posted is not None
    got = store.get(first.id)
    assert got == posted
    assert got.announced
    assert got.posting == {}
    assert store.unannounced() == [(second.id, second.dedup_key)]
    gone = store.transition(second, "expired", from_states=("pending_approval",))
    assert gone is not None
    assert store.unannounced() == []


def test_concurrent_intents_to_post_one_request_have_one_winner(backend: Backend) -> None:
    rem, _ = backend.store.create(make())
    stores = [backend.make() for _ in range(4)]
    won = race(8, lambda i: stores[i % 4].update(rem, posting={"tag": f"request:{rem.id}", "by": str(i)}))
    assert sum(1 for w in won if w is not None) == 1


# -- inbox -----------------------------------------------------------------------------------------


def inbound(finding_id: str, **overrides: Any) -> Inbound:
    values: dict[str, Any] = {"finding_id": finding_id, "source": "defender", "received_at": T0,
                              "finding": {"id": finding_id, "kind": "alert", "title": "Ünïcödé <!channel>",
                                          "extended_properties": {"a": [1, None]}}}
    values.update(overrides)
    return Inbound(**values)


def test_receive_queues_new_findings_and_answers_duplicates_while_they_wait(store: Store) -> None:
    a, b = "fa-" + unique(), "fb-" + unique()
    assert store.receive([inbound(a), inbound(b), inbound(a)]) == [True, True, False]
    assert store.receive([inbound(b, source="eventgrid")]) == [False]
    rows = store.inbound([b, "unknown-" + unique(), a])
    assert [r.finding_id for r in rows] == [b, a]
    assert rows[1] == inbound(a)  # stored as received (the duplicate changed nothing)
    assert all(r.waiting and r.remediation_id is None and r.planned_at is None for r in rows)
    assert store.receive([]) == []


def test_a_planned_finding_is_a_duplicate_while_its_remediation_is_open(store: Store) -> None:
    fid = "f-" + unique()
    rem, _ = store.create(make())
    store.receive([inbound(fid)])
    store.mark_planned({fid: rem.id, "unknown-" + unique(): None}, at=T0 + timedelta(seconds=1))
    (row,) = store.inbound([fid])
    assert (row.waiting, row.remediation_id, row.planned_at) == (False, rem.id, T0 + timedelta(seconds=1))
    assert store.receive([inbound(fid)]) == [False]  # redelivered while the remediation is open
    closed = store.transition(rem, "rejected", from_states=("pending_approval",))
    assert closed is not None
    later = T0 + timedelta(days=7)
    assert store.receive([inbound(fid, received_at=later)]) == [True]  # its remediation is over: plan it again
    (row,) = store.inbound([fid])
    assert (row.waiting, row.remediation_id, row.planned_at, row.received_at) == (True, None, None, later)


def test_a_finding_planned_without_a_remediation_is_queued_again(store: Store) -> None:
    fid = "f-" + unique()
    store.receive([inbound(fid)])
    store.mark_planned({fid: None}, at=T0)
    assert store.receive([inbound(fid)]) == [True]
    store.mark_planned({fid: "no-such-remediation"}, at=T0)  # a remediation that no longer exists
    assert store.receive([inbound(fid)]) == [True]


def test_concurrent_receives_of_one_finding_queue_it_once(backend: Backend) -> None:
    fid = "f-" + unique()
    stores = [backend.make() for _ in range(4)]
    answers = race(8, lambda i: stores[i % 4].receive([inbound(fid)])[0])
    assert answers.count(True) == 1


def test_waiting_lists_findings_received_before_a_time_that_are_still_waiting(store: Store) -> None:
    old, new, planned = ("f-" + unique() for _ in range(3))
    store.receive([inbound(old), inbound(planned), inbound(new, received_at=T0 + timedelta(hours=1))])
    store.mark_planned({planned: None}, at=T0)
    assert store.waiting(received_before=T0 + timedelta(minutes=30)) == [old]
    assert store.waiting(received_before=T0 + timedelta(hours=2)) == [old, new]
    assert store.waiting(received_before=T0 + timedelta(hours=2), limit=1) == [old]
    # one delivery's rows (an announce waits while they are planned): received at or after a time
    assert store.waiting(received_before=T0 + timedelta(hours=2), received_after=T0 + timedelta(hours=1)) == [new]
    assert store.waiting(received_before=T0 + timedelta(hours=1), received_after=T0) == [old]


def test_prune_forgets_planned_rows_only(store: Store) -> None:
    old, new, waiting = ("f-" + unique() for _ in range(3))
    store.receive([inbound(old), inbound(new), inbound(waiting)])
    store.mark_planned({old: None}, at=T0)
    store.mark_planned({new: None}, at=T0 + timedelta(hours=2))
    assert store.prune_inbox(planned_before=T0 + timedelta(hours=1)) == 1
    assert [r.finding_id for r in store.inbound([old, new, waiting])] == [new, waiting]


# -- locks -----------------------------------------------------------------------------------------


def test_locks_are_exclusive_reentrant_and_expire(backend: Backend) -> None:
    store = backend.store
    key = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a"
    assert store.acquire_lock(key, "w1", 30)
    assert not store.acquire_lock(key, "w2", 30)
    assert store.acquire_lock(key, "w1", 30)  # re-entrant: extends
    assert store.acquire_lock("another", "w2", 30)
    store.release_lock(key, "w2")  # not the owner: nothing happens
    assert not store.acquire_lock(key, "w2", 30)
    backend.clock.advance(31)
    assert store.acquire_lock(key, "w2", 30)  # w1's lease ran out
    assert not store.acquire_lock(key, "w1", 30)
    store.release_lock(key, "w2")
    assert store.acquire_lock(key, "w1", 30)
    store.release_lock("never-taken", "w1")


def test_a_renewed_lock_runs_from_the_renewal(backend: Backend) -> None:
    store = backend.store
    assert store.acquire_lock("k", "w1", 10)
    backend.clock.advance(8)
    assert store.acquire_lock("k", "w1", 10)
    backend.clock.advance(8)
    assert not store.acquire_lock("k", "w2", 10)


def test_concurrent_lock_takers_have_one_winner(backend: Backend) -> None:
    stores = [backend.store, backend.make()]
    results = race(20, lambda i: stores[i % 2].acquire_lock("hot", f"w{i}", 60))
    assert results.count(True) == 1


def test_a_lease_token_grows_on_every_acquisition_and_fences_out_the_previous_holder(backend: Backend) -> None:
    store = backend.store
    key = "resource:/subscriptions/s/resourcegroups/rg/providers/microsoft.storage/storageaccounts/a"
    first = store.acquire_lease(key, "w1", 30)
    assert first is not None
    assert store.check_lease(key, "w1", first)
    assert store.acquire_lease(key, "w2", 30) is None
    assert not store.check_lease(key, "w2", first)
    backend.clock.advance(31)  # w1 stalled past its lease
    assert not store.check_lease(key, "w1", first)  # expired: w1 may not write any more
    second = store.acquire_lease(key, "w2", 30)
    assert second is not None
    assert second > first
    assert not store.renew_lease(key, "w1", first, 30)  # too late: w2 holds it
    assert not store.check_lease(key, "w1", first)
    assert store.check_lease(key, "w2", second)
    store.release_lock(key, "w2")
    assert not store.check_lease(key, "w2", second)
    third = store.acquire_lease(key, "w1", 30)
    assert third is not None
    assert third > second  # released and taken again: still growing
    again = store.acquire_lease(key, "w1", 30)  # the owner again: a new token, the old one stops checking
    assert again is not None
    assert again > third
    assert not store.check_lease(key, "w1", third)
    assert store.check_lease(key, "w1", again)


def test_a_renewed_lease_outlives_its_first_ttl(backend: Backend) -> None:
    store = backend.store
    token = store.acquire_lease("k", "w1", 10)
    assert token is not None
    for _ in range(3):
        backend.clock.advance(8)
        assert store.renew_lease("k", "w1", token, 10)
    assert store.check_lease("k", "w1", token)
    assert store.acquire_lease("k", "w2", 10) is None
    backend.clock.advance(11)  # renewals stopped: it runs out
    assert not store.check_lease("k", "w1", token)
    assert store.acquire_lease("k", "w2", 10) is not None


def test_concurrent_lease_takers_have_one_winner_with_one_token(backend: Backend) -> None:
    stores = [backend.store, backend.make()]
    results = race(20, lambda i: stores[i % 2].acquire_lease("hot-lease", f"w{i}", 60))
    assert len([r for r in results if r is not None]) == 1


# -- audit -----------------------------------------------------------------------------------------


def test_audit_is_read_back_in_order_per_remediation_and_overall(store: Store) -> None:
    events = [
        AuditEvent(remediation_id="r1", event="planned", actor="defender", at=T0, detail={"plan": ["ü", 1]}),
        AuditEvent(remediation_id="r2", event="planned", actor="defender", at=T0),
        AuditEvent(remediation_id=None, event="paused", actor="slack:U1", at=T0, detail={"reason": "incident ✓"}),
        AuditEvent(remediation_id="r1", event="approved", actor="slack:U2", at=T0 + timedelta(seconds=1)),
        AuditEvent(remediation_id="r1", event="applied", actor="worker", at=T0 - timedelta(days=1)),
    ]
    for event in events:
        store.audit(event)
    everything = store.audit_log()
    assert [(e.remediation_id, e.event) for e in everything] == [(e.remediation_id, e.event) for e in events]
    assert [dataclasses.replace(e, seq=0) for e in everything] == events
    seqs = [e.seq for e in everything]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    r1 = store.audit_log("r1")
    assert [e.event for e in r1] == ["planned", "approved", "applied"]
    assert r1[0].detail == {"plan": ["ü", 1]}
    assert store.audit_log("nobody") == []


def test_concurrent_audit_appends_are_all_kept(store: Store) -> None:
    race(20, lambda i: store.audit(AuditEvent(remediation_id="r", event=f"e{i}", actor="worker", at=T0)))
    log = store.audit_log("r")
    assert sorted(e.event for e in log) == sorted(f"e{i}" for i in range(20))
    assert len(store.audit_log()) == 20


def test_the_store_offers_no_way_to_change_the_audit_log(store: Store) -> None:
    public = {name for name in dir(store) if not name.startswith("_")}
    assert not {n for n in public if "audit" in n} - {"audit", "audit_log", "audit_records"}  # records: read-only


# -- queue -----------------------------------------------------------------------------------------


def test_queue_delivers_in_order_and_hides_delivered_jobs(backend: Backend) -> None:
    store = backend.store
    sent = [store.enqueue(Job(kind="apply", payload={"remediation": f"r{i}", "ü": [i]})) for i in range(3)]
    assert all(j.id for j in sent)
    assert len({j.id for j in sent}) == 3
    got = []
    for _ in range(3):
        job = store.dequeue(visibility_seconds=60)
        assert job is not None
        got.append(job)
    assert [j.payload for j in got] == [{"remediation": f"r{i}", "ü": [i]} for i in range(3)]
    assert [j.id for j in got] == [j.id for j in sent]
    assert all(j.kind == "apply" and j.dequeue_count == 1 and j.receipt for j in got)
    assert store.dequeue() is None
    for job in got:
        store.complete(job)
    assert store.dequeue() is None


def test_the_urgent_lane_is_dequeued_first_and_completed_and_extended_in_its_own_lane(backend: Backend) -> None:
    """Work a person is waiting on (an approved apply, its message update) never waits behind a backlog."""
    store = backend.store
    for i in range(3):
        store.enqueue(Job(kind="apply", payload={"i": i}))  # automatic applies: the ordinary lane
    store.enqueue(Job(kind="apply", payload={"i": "asked"}, urgent=True))
    store.enqueue(Job(kind="post", payload={"i": "post"}, urgent=True))
    got = [store.dequeue(visibility_seconds=60) for _ in range(5)]
    assert all(j is not None for j in got)
    jobs = [j for j in got if j is not None]
    assert [j.payload["i"] for j in jobs] == ["asked", "post", 0, 1, 2]
    assert [j.urgent for j in jobs] == [True, True, False, False, False]
    extended = store.extend(jobs[0], 60)  # the receipt is the urgent lane's: found there
    assert extended is not None
    for job in (extended, *jobs[1:]):
        store.complete(job)
    backend.pass_time(0.1)
    assert store.dequeue(visibility_seconds=1) is None


# Azure Queue Storage keeps visibility and delay on the server's clock, in whole seconds: on Azurite these wait
SERVER_CLOCK = pytest.mark.parametrize("backend", ["sqlite", pytest.param("azurite", marks=pytest.mark.slow(
    reason="Azurite's queue visibility runs on its own clock, in whole seconds: the test waits them out"))],
    indirect=True)


@SERVER_CLOCK
def test_an_uncompleted_job_comes_back_and_a_stale_receipt_cannot_delete_it(backend: Backend) -> None:
    store = backend.store
    store.enqueue(Job(kind="apply", payload={"r": 1}))
    first = store.dequeue(visibility_seconds=1)
    assert first is not None
    assert first.dequeue_count == 1
    assert store.dequeue(visibility_seconds=1) is None
    backend.pass_time(1.1)  # past the visibility; on Azurite _dequeue_within waits for the server's clock
    second = _dequeue_within(store, 10, visibility_seconds=1)
    assert second.id == first.id
    assert second.dequeue_count == 2
    assert second.receipt != first.receipt
    store.complete(first)  # the timed-out worker finishing late: must not delete the redelivery
    backend.pass_time(1.1)
    third = _dequeue_within(store, 10, visibility_seconds=1)
    assert third.id == first.id
    assert third.dequeue_count == 3
    store.complete(third)
    backend.pass_time(1.5)
    assert store.dequeue() is None


@SERVER_CLOCK
def test_a_delayed_job_appears_after_the_delay(backend: Backend) -> None:
    store = backend.store
    store.enqueue(Job(kind="reply", payload={}), delay_seconds=2)
    store.enqueue(Job(kind="post", payload={}))
    job = store.dequeue()
    assert job is not None
    assert job.kind == "post"
    store.complete(job)
    assert store.dequeue() is None
    backend.pass_time(2.1)  # past the delay; on Azurite _dequeue_within waits for the server's clock
    later = _dequeue_within(store, 10)
    assert later.kind == "reply"


@SERVER_CLOCK
def test_an_extended_job_stays_hidden_and_completes_with_its_latest_receipt(backend: Backend) -> None:
    store = backend.store
    store.enqueue(Job(kind="plan", payload={"r": 1}))
    job = store.dequeue(visibility_seconds=1)
    assert job is not None
    extended = store.extend(job, 4)
    assert extended is not None
    backend.pass_time(1.5)  # past the first visibility: still hidden
    assert store.dequeue(visibility_seconds=1) is None
    store.complete(extended)
    backend.pass_time(3)
    assert store.dequeue() is None  # completed with the receipt extend returned


@SERVER_CLOCK
def test_a_delivery_that_timed_out_cannot_be_extended(backend: Backend) -> None:
    store = backend.store
    store.enqueue(Job(kind="plan", payload={"r": 1}))
    first = store.dequeue(visibility_seconds=1)
    assert first is not None
    backend.pass_time(1.1)
    second = _dequeue_within(store, 10, visibility_seconds=30)
    assert second.id == first.id
    assert store.extend(first, 30) is None  # the redelivery is someone else's now
    assert store.extend(Job(kind="plan", payload={}), 30) is None  # never dequeued: no receipt
    store.complete(second)


def test_a_dequeue_takes_one_job_so_another_instance_gets_the_next(backend: Backend) -> None:
    """No instance hoards: each dequeue hides one job, the next instance's dequeue gets the next one."""
    store, other = backend.store, backend.make()
    for i in range(3):
        store.enqueue(Job(kind="apply", payload={"i": i}))
    first = store.dequeue(visibility_seconds=60)
    second = other.dequeue(visibility_seconds=60)
    third = store.dequeue(visibility_seconds=60)
    assert first is not None
    assert second is not None
    assert third is not None
    assert [j.payload["i"] for j in (first, second, third)] == [0, 1, 2]
    assert other.dequeue(visibility_seconds=60) is None


def test_concurrent_dequeues_deliver_each_job_once(backend: Backend) -> None:
    store = backend.store
    for i in range(10):
        store.enqueue(Job(kind="apply", payload={"i": i}))
    got = race(20, lambda _: store.dequeue(visibility_seconds=60))
    jobs = [j for j in got if j is not None]
    assert sorted(j.payload["i"] for j in jobs) == list(range(10))


def _dequeue_within(store: Store, seconds: float, *, visibility_seconds: float = 60) -> Job:
    deadline = time.monotonic() + seconds
    while True:
        job = store.dequeue(visibility_seconds=visibility_seconds)
        if job is not None:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"no job became visible within {seconds} s")
        time.sleep(0.1)


# -- flags and counters ----------------------------------------------------------------------------


def test_flags_are_set_overwritten_and_removed(backend: Backend) -> None:
    store = backend.store
    assert store.get_flag("paused") is None
    store.set_flag("paused", "slack:U1 at 12:00 ✓")
    assert store.get_flag("paused") == "slack:U1 at 12:00 ✓"
    assert backend.make().get_flag("paused") == "slack:U1 at 12:00 ✓"  # shared by all instances
    store.set_flag("paused", "again")
    assert store.get_flag("paused") == "again"
    store.set_flag("paused", None)
    assert store.get_flag("paused") is None
    store.set_flag("paused", None)  # removing twice is fine
    store.set_flag("odd/name#?\\", "v")
    assert store.get_flag("odd/name#?\\") == "v"


def test_old_counter_windows_are_pruned(store: Store) -> None:
    name = "slack-post:C" + unique()
    second = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for i in range(3):
        assert store.incr_counter(name, second + timedelta(seconds=i)) == 1
    assert store.prune_counters(before=second + timedelta(seconds=2)) >= 2
    assert store.incr_counter(name, second) == 1  # forgotten: a new count
    assert store.incr_counter(name, second + timedelta(seconds=2)) == 2  # kept


def test_counters_are_atomic_under_concurrency(backend: Backend) -> None:
    stores = [backend.store, backend.make()]
    hour = datetime(2025, 3, 1, 12, tzinfo=UTC)
    values = race(20, lambda i: stores[i % 2].incr_counter("auto:/subscriptions/s", hour))
    assert sorted(values) == list(range(1, 21))
    assert backend.store.incr_counter("auto:/subscriptions/s", hour) == 21
    assert backend.store.incr_counter("auto:/subscriptions/s", hour + timedelta(hours=1)) == 1
    assert backend.store.incr_counter("auto:/subscriptions/other", hour) == 1
    assert Counter(values).most_common(1)[0][1] == 1
