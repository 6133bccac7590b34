"""Table/Queue Storage only (on Azurite): size limits, dedup recovery after crashes, encoding, open_store."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from remediator.errors import ConfigError
from remediator.lifecycle.model import Job, Remediation
from remediator.store import open_store
from remediator.store.azure import AzureStore, _safe_key
from tests.store.test_contract import make
from tests.support.azurite import drop_store


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def conn(azurite_connection_string: str) -> str:
    return azurite_connection_string


@pytest.fixture
def store(conn: str, prefix: str) -> Iterator[AzureStore]:
    with AzureStore(conn, prefix=prefix, claim_grace=0.5) as s:
        yield s
    drop_store(conn, prefix)


def _raw(store: AzureStore, table: str, pk: str) -> dict[str, Any]:
    return dict(store._tables[table].get_entity(pk, "r"))


# -- size limits -----------------------------------------------------------------------------------


def test_a_large_remediation_is_compressed_into_binary_parts(store: AzureStore) -> None:
    rules = [{"name": f"rule-{i}", "id": uuid.uuid4().hex + uuid.uuid4().hex, "priority": i,
              "description": "deny inbound from the internet " * 4} for i in range(6000)]
    rem = make(changes=({"operation": "update", "before": {"rules": rules}, "after": {"rules": rules[:10]}},))
    assert len(json.dumps(rules)) > 1_000_000  # beyond one entity, let alone one property
    stored, created = store.create(rem)
    assert created
    raw = _raw(store, "remediations", rem.id)
    assert raw["DocParts"] >= 2  # random ids keep it from compressing into one 64 KB property
    assert "Doc" not in raw
    assert store.get(rem.id) == stored
    approved = store.transition(stored, "approved", from_states={"pending_approval"})
    assert approved is not None
    assert store.get(rem.id) == approved


def test_a_small_remediation_stays_a_readable_string(store: AzureStore) -> None:
    rem, _ = store.create(make())
    raw = _raw(store, "remediations", rem.id)
    assert json.loads(raw["Doc"])["id"] == rem.id
    assert raw["State"] == "pending_approval"
    assert raw["DedupKey"] == rem.dedup_key


def test_astral_characters_count_twice_against_the_string_limit(store: AzureStore) -> None:
    rem = make(finding={"title": "🚨" * 16_000})  # 16,000 code points, 32,000 UTF-16 units
    stored, _ = store.create(rem)
    assert "DocParts" in _raw(store, "remediations", rem.id)
    assert store.get(rem.id) == stored


def test_a_remediation_over_the_entity_limit_is_refused_before_any_write(store: AzureStore) -> None:
    noise = base64.b64encode(os.urandom(1_200_000)).decode()  # does not compress
    rem = make(finding={"blob": noise})
    with pytest.raises(ValueError, match="over Table Storage's entity limit"):
        store.create(rem)
    assert store.get(rem.id) is None
    assert store.create(make(dedup_key=rem.dedup_key))[1]  # and the key was never claimed


def test_an_oversized_job_is_refused(store: AzureStore) -> None:
    with pytest.raises(ValueError, match="put ids in jobs"):
        store.enqueue(Job(kind="apply", payload={"x": "y" * 60_000}))


def test_queue_messages_are_base64_json_like_the_functions_trigger_expects(store: AzureStore, conn: str) -> None:
    store.enqueue(Job(kind="apply", payload={"remediation": "r1", "ü": 1}))
    with QueueClient.from_connection_string(conn, f"{store.prefix}-jobs") as raw:
        [msg] = raw.peek_messages()
    assert json.loads(base64.b64decode(str(msg.content))) == {"kind": "apply", "payload": {"remediation": "r1", "ü": 1}}


# -- keys ------------------------------------------------------------------------------------------


def test_keys_are_kept_when_plain_and_hashed_otherwise() -> None:
    assert _safe_key("r_AbC-123") == "r_AbC-123"
    hashed = _safe_key("/subscriptions/s/resourceGroups/rg")
    assert hashed.startswith("~")
    assert len(hashed) == 65
    assert _safe_key("~" + "0" * 64) != "~" + "0" * 64  # a literal can never pose as a hash
    assert _safe_key("x" * 201).startswith("~")
    assert _safe_key("").startswith("~")


def test_odd_ids_and_keys_round_trip(store: AzureStore) -> None:
    rem, _ = store.create(make(id="r/with#odd?chars\\ü", dedup_key="p|/subscriptions/S/x#y?z"))
    assert store.get("r/with#odd?chars\\ü") == rem
    assert not store.create(make(dedup_key="p|/subscriptions/S/x#y?z"))[1]
    assert store.acquire_lock("/subscriptions/S/x#y?z", "w", 10)
    assert store.incr_counter("auto:/subscriptions/S", rem.created_at) == 1


# -- dedup recovery --------------------------------------------------------------------------------


def test_a_slot_left_by_a_crash_after_a_final_transition_is_taken_at_once(store: AzureStore,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rem, _ = store.create(make(dedup_key="k"))
    monkeypatch.setattr(store, "_free", lambda key, rem_id: None)  # crash before the slot is freed
    assert store.transition(rem, "failed", from_states={"pending_approval"}) is not None
    monkeypatch.undo()
    assert _raw(store, "dedup", "k")["Holder"] == rem.id
    store._claim_grace = 30  # must not wait: the holder was written after the slot and is final
    started = time.monotonic()
    new, created = store.create(make(dedup_key="k"))
    assert created
    assert time.monotonic() - started < 5
    assert _raw(store, "dedup", "k")["Holder"] == new.id


def test_a_slot_whose_creator_vanished_is_taken_after_the_grace(store: AzureStore) -> None:
    store._dedup.create_entity({"PartitionKey": "k", "RowKey": "r", "Key": "k", "Holder": "ghost"})
    started = time.monotonic()
    new, created = store.create(make(dedup_key="k"))
    assert created
    assert time.monotonic() - started >= 0.5
    assert _raw(store, "dedup", "k")["Holder"] == new.id


def test_a_create_waits_for_an_in_flight_creator_and_returns_its_remediation(store: AzureStore) -> None:
    store._claim_grace = 10
    slow = make(dedup_key="k")
    store._dedup.create_entity({"PartitionKey": "k", "RowKey": "r", "Key": "k", "Holder": slow.id})

    def finish() -> None:
        time.sleep(0.5)
        store._insert(slow, store._entity(slow, "0"))

    writer = threading.Thread(target=finish)
    writer.start()
    got, created = store.create(make(dedup_key="k"))
    writer.join()
    assert not created
    assert got.id == slow.id


def test_a_stalled_creator_whose_slot_was_taken_withdraws(store: AzureStore, conn: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    other = AzureStore(conn, prefix=store.prefix, claim_grace=0.3)
    stalled = make(dedup_key="k")
    other_done = threading.Event()
    real_insert = store._insert
    inserted: list[str] = []

    def insert_after_the_other(rem: Remediation, entity: Any, *events: Any) -> Remediation:
        if rem.id == stalled.id and not other_done.is_set():
            assert other_done.wait(20)
        inserted.append(rem.id)
        return real_insert(rem, entity, *events)

    monkeypatch.setattr(store, "_insert", insert_after_the_other)
    result: list[tuple[Remediation, bool]] = []
    worker = threading.Thread(target=lambda: result.append(store.create(stalled)))
    worker.start()
    deadline = time.monotonic() + 20
    while not store._holds("k", stalled.id):  # the stalled creator holds the slot, its remediation unwritten
        assert time.monotonic() < deadline
        time.sleep(0.02)
    winner, created = other.create(make(dedup_key="k"))
    other_done.set()
    worker.join(30)
    other.close()
    assert created
    assert result == [(winner, False)]
    assert inserted == [stalled.id]
    assert store.get(stalled.id) is None  # written after the takeover, then withdrawn
    assert [r.id for r in store.list()] == [winner.id]


# -- open_store ------------------------------------------------------------------------------------


def test_open_store_azure_urls(conn: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = open_store(f"azure://{prefix}", connection_string=conn)
    assert isinstance(s, AzureStore)
    assert s.prefix == prefix
    s.close()
    monkeypatch.setenv("REMEDIATOR_STORAGE_CONNECTION", conn)
    s = open_store(f"azure://{prefix}/")
    assert isinstance(s, AzureStore)
    s.set_flag("x", "1")
    assert s.get_flag("x") == "1"
    s.close()
    drop_store(conn, prefix)


def test_open_store_azure_needs_a_connection_string_and_a_valid_prefix(monkeypatch: pytest.MonkeyPatch,
                                                                       conn: str) -> None:
    monkeypatch.delenv("REMEDIATOR_STORAGE_CONNECTION", raising=False)
    with pytest.raises(ConfigError, match="REMEDIATOR_STORAGE_CONNECTION"):
        open_store("azure://")
    with pytest.raises(ConfigError, match="lower-case letters and digits"):
        open_store("azure://Bad-Prefix", connection_string=conn)


# -- the audit layout: a remediation's chain beside it; the old layout still read -------------------------


def _old_layout_record(store: AzureStore, rid: str, position: int, prev: str, event: str) -> str:
    """A record of a remediation chain as remediators before issue 17 wrote it: in the audit table."""
    from remediator.lifecycle.chain import record_hash
    from remediator.lifecycle.model import AuditEvent
    from remediator.store import codec

    doc = codec.dumps(codec.audit_to_dict(AuditEvent(remediation_id=rid, event=event, actor="worker",
                                                     at=make().created_at)))
    digest = record_hash(rid, position, prev, doc)
    store._tables["audit"].create_entity({
        "PartitionKey": _safe_key(rid), "RowKey": f"c{position:012d}", "Chain": rid, "Position": position,
        "Prev": prev, "Hash": digest, "Stamp": f"{position:020d}", "RemediationId": rid, "Event": event, "Doc": doc})
    return digest


def test_records_live_beside_their_remediation_and_never_read_as_one(store: AzureStore) -> None:
    from remediator.lifecycle.model import AuditEvent

    rem = make()
    store.create(rem, audit=AuditEvent(remediation_id=rem.id, event="approval_requested", actor="t",
                                       at=rem.created_at, detail={"state": "pending_approval"}))
    rows = sorted(str(e["RowKey"]) for e in store._tables["remediations"].list_entities())
    assert rows == ["c000000000001", "r"]  # one partition: the remediation and its record
    assert list(store._tables["audit"].list_entities()) == []
    assert [r.id for r in store.list()] == [rem.id]
    assert store.remediation_states() == [(rem.id, "pending_approval")]
    assert store.unannounced() == [(rem.id, rem.dedup_key)]
    assert store.quarantine_count() == 0


def test_a_chain_of_the_old_layout_is_continued_and_verifies(store: AzureStore) -> None:
    from remediator.evidence.verify import verify_store
    from remediator.lifecycle.chain import GENESIS
    from remediator.lifecycle.model import AuditEvent

    rem, _ = store.create(make())  # the remediation as it was, its records in the audit table
    first = _old_layout_record(store, rem.id, 1, GENESIS, "approval_requested")
    _old_layout_record(store, rem.id, 2, first, "reminded")
    moved = store.transition(rem, "approved", from_states=("pending_approval",), audit=AuditEvent(
        remediation_id=rem.id, event="approved", actor="U1", at=rem.created_at, detail={"state": "approved"}))
    assert moved is not None
    log = store.audit_log(rem.id)
    assert [(e.event, e.position) for e in log] == [("approval_requested", 1), ("reminded", 2), ("approved", 3)]
    result = verify_store(store)
    assert result.ok, [p.line() for p in result.problems]
    assert (result.records, result.incomplete) == (3, ())
    assert store.anchor() == 1
    assert verify_store(store).ok


def test_appending_many_records_to_one_chain_probes_its_head_once(store: AzureStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from remediator.lifecycle.model import AuditEvent

    rem, _ = store.create(make())
    probes: list[str] = []
    real = store._find_head
    monkeypatch.setattr(store, "_find_head", lambda pk, table: probes.append(pk) or real(pk, table))
    for i in range(20):
        store.audit(AuditEvent(remediation_id=rem.id, event="change_applied", actor="w", at=rem.created_at,
                               detail={"n": i}))
    assert len(probes) <= 2  # the remediations table, then the old layout's audit table: once, not per record
    assert [e.position for e in store.audit_log(rem.id)] == list(range(1, 21))
