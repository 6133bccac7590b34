"""A tampered audit trail is detected, with the record's id: on SQLite with its append-only triggers
dropped first (as an attacker with the file would), and on Azure Tables (Azurite) by editing and
deleting entities directly with azure-data-tables."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from remediator.app.cli import main
from remediator.evidence.verify import verify_store
from remediator.lifecycle.chain import GENESIS, record_hash
from remediator.lifecycle.model import AuditEvent
from remediator.store import SQLiteStore

T0 = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _fill(store: object, clock: Clock) -> None:
    for rid in ("remA", "remB"):
        for i in range(4):
            store.audit(AuditEvent(remediation_id=rid, event=f"e{i}", actor="worker", at=clock(),  # type: ignore[attr-defined]
                                   detail={"n": i}))
            clock.now += timedelta(minutes=1)
    store.audit(AuditEvent(remediation_id=None, event="paused", actor="slack:U1", at=clock()))  # type: ignore[attr-defined]
    clock.now += timedelta(hours=1)
    store.anchor()  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[SQLiteStore, sqlite3.Connection]]:
    clock = Clock()
    with SQLiteStore(tmp_path / "audit.db", clock=clock) as store:
        _fill(store, clock)
        assert verify_store(store).ok
        attacker = sqlite3.connect(tmp_path / "audit.db")
        attacker.execute("DROP TRIGGER audit_no_update")
        attacker.execute("DROP TRIGGER audit_no_delete")
        attacker.commit()
        yield store, attacker
        attacker.close()


def _problems(store: object) -> list[tuple[str, str]]:
    return [(p.kind, p.record) for p in verify_store(store).problems]


def test_an_intact_trail_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    with SQLiteStore(tmp_path / "ok.db", clock=clock) as store:
        _fill(store, clock)
        result = verify_store(store)
    assert result.ok
    assert (result.records, result.chains, result.anchors, result.anchored, result.unanchored) == (10, 4, 1, 9, 0)
    assert main(["audit", "verify", "--store", str(tmp_path / "ok.db")]) == 0
    assert capsys.readouterr().out.startswith("OK: the audit trail is complete and unaltered")


def test_sqlite_edit_is_detected(sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    db.execute("UPDATE audit SET doc = replace(doc, '\"n\":1', '\"n\":9') WHERE chain = 'remA' AND position = 2")
    db.commit()
    assert _problems(store) == [("edited", "remA#2")]


def test_sqlite_edit_with_the_hash_recomputed_is_detected(sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    (doc, prev) = db.execute("SELECT doc, prev FROM audit WHERE chain = 'remA' AND position = 2").fetchone()
    forged = doc.replace('"n":1', '"n":9')
    db.execute("UPDATE audit SET doc = ?, hash = ? WHERE chain = 'remA' AND position = 2",
               (forged, record_hash("remA", 2, prev, forged)))
    db.commit()
    assert _problems(store) == [("edited", "remA#2")]


def test_sqlite_delete_is_detected(sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    db.execute("DELETE FROM audit WHERE chain = 'remB' AND position = 2")
    db.commit()
    assert _problems(store) == [("deleted", "remB#2")]


def test_sqlite_deleted_tail_and_whole_chain_are_caught_by_the_anchor(
        sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    db.execute("DELETE FROM audit WHERE chain = 'remB' AND position = 4")
    db.execute("DELETE FROM audit WHERE chain LIKE '_system-%'")
    db.commit()
    problems = _problems(store)
    assert ("deleted", "remB#4") in problems
    assert ("deleted", "_system-20260803#1") in problems


def test_sqlite_reorder_is_detected(sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    db.execute("DROP INDEX audit_chain")
    db.execute("UPDATE audit SET position = CASE position WHEN 2 THEN 3 ELSE 2 END "
               "WHERE chain = 'remA' AND position IN (2, 3)")
    db.commit()
    assert sorted(_problems(store)) == [("reordered", "remA#2"), ("reordered", "remA#3")]


def test_sqlite_insert_is_detected(sqlite_file: tuple[SQLiteStore, sqlite3.Connection]) -> None:
    store, db = sqlite_file
    # a forged approval dated in the past, appended with a correct hash: the anchor would have named it
    (prev,) = db.execute("SELECT hash FROM audit WHERE chain = 'remA' AND position = 4").fetchone()
    doc = json.dumps({"remediation_id": "remA", "event": "approved", "actor": "slack:U0FORGED",
                      "at": "2026-08-03T09:02:30.000000Z", "detail": {}}, separators=(",", ":"))
    db.execute("INSERT INTO audit (remediation_id, doc, chain, position, prev, hash) VALUES (?, ?, ?, ?, ?, ?)",
               ("remA", doc, "remA", 5, prev, record_hash("remA", 5, prev, doc)))
    # and a row around the chains altogether
    db.execute("INSERT INTO audit (remediation_id, doc) VALUES ('remB', ?)", (doc,))
    db.commit()
    problems = _problems(store)
    assert ("inserted", "remA#5") in problems
    assert any(kind == "inserted" and record.startswith("seq ") for kind, record in problems)
    assert len(problems) == 2


def test_verify_exits_1_and_names_the_record(sqlite_file: tuple[SQLiteStore, sqlite3.Connection], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    store, db = sqlite_file
    db.execute("DELETE FROM audit WHERE chain = 'remB' AND position = 3")
    db.commit()
    assert main(["audit", "verify", "--store", store.path, "--from", "2026-08-01", "--to", "2026-08-31"]) == 1
    out = capsys.readouterr().out
    assert "deleted   remB#3: missing between remB#2 and remB#4" in out
    assert "FAILED: 1 problem" in out


def test_a_version_2_store_is_chained_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE remediations (id TEXT PRIMARY KEY, dedup_key TEXT NOT NULL, state TEXT NOT NULL, "
        "version INTEGER NOT NULL, doc TEXT NOT NULL, announced INTEGER NOT NULL DEFAULT 1);"
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, remediation_id TEXT, doc TEXT NOT NULL);"
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END;"
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END;"
        "PRAGMA user_version = 2;")
    for rid, event in (("r1", "planned"), (None, "paused"), ("r1", "applied")):
        conn.execute("INSERT INTO audit (remediation_id, doc) VALUES (?, ?)", (rid, json.dumps(
            {"remediation_id": rid, "event": event, "actor": "worker", "at": "2026-05-01T10:00:00.000000Z",
             "detail": {}})))
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        records = list(store.audit_records())
        chained = [(r.chain, r.position) for r in records]
        assert {("_system-20260501", 1), ("r1", 1), ("r1", 2)} <= set(chained)
        assert len(records) == 4  # the three, plus the chain_upgrade record in the day of the upgrade
        assert records[0].prev == GENESIS
        upgrade = [e for e in store.audit_log() if e.event == "chain_upgrade"]
        assert upgrade[0].detail["records_chained"] == 3
        assert verify_store(store).ok
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store._connection().execute("UPDATE audit SET doc = '{}'")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6  # 2 → 3 → 4 (quarantine) → 5 (lock tokens) → 6
    conn.close()


# -- Azure Tables (Azurite) ---------------------------------------------------------------------------


@pytest.fixture
def azure(azurite_connection_string: str, request: pytest.FixtureRequest) -> Iterator[object]:
    from azure.data.tables import TableClient

    from remediator.store.azure import AzureStore

    prefix = "tamper" + format(abs(hash(request.node.name)) % 10**8, "d")
    clock = Clock()
    with AzureStore(azurite_connection_string, prefix=prefix, clock=clock) as store:
        _fill(store, clock)
        assert verify_store(store).ok
        # a remediation's chain lives beside it, in the remediations table (the store's docstring: Audit)
        with TableClient.from_connection_string(azurite_connection_string, prefix + "remediations") as table:
            yield store, table


def test_azure_edit_and_delete_are_detected(azure: tuple[object, object]) -> None:
    from azure.data.tables import TableClient, UpdateMode

    store, table = azure
    assert isinstance(table, TableClient)
    row = table.get_entity("remA", "c000000000002")
    row["Doc"] = str(row["Doc"]).replace('"n":1', '"n":9')
    table.update_entity(row, mode=UpdateMode.REPLACE)
    table.delete_entity("remB", "c000000000003")
    assert sorted(_problems(store)) == [("deleted", "remB#3"), ("edited", "remA#2")]


def test_azure_deleted_chain_tail_is_caught_by_the_anchor(azure: tuple[object, object]) -> None:
    from azure.data.tables import TableClient

    store, table = azure
    assert isinstance(table, TableClient)
    table.delete_entity("remA", "c000000000004")
    assert _problems(store) == [("deleted", "remA#4")]


def test_azure_reorder_is_detected(azure: tuple[object, object]) -> None:
    from azure.data.tables import TableClient, UpdateMode

    store, table = azure
    assert isinstance(table, TableClient)
    a, b = table.get_entity("remB", "c000000000001"), table.get_entity("remB", "c000000000002")
    for row, other in ((a, b), (b, a)):
        moved = dict(row.items())
        moved["RowKey"], moved["Position"] = other["RowKey"], other["Position"]
        table.upsert_entity(moved, mode=UpdateMode.REPLACE)
    assert sorted(_problems(store)) == [("reordered", "remB#1"), ("reordered", "remB#2")]


def test_cli_verify_names_a_state_whose_record_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Completeness, not only order: the tail record of a chain deleted before any anchor named it
    is invisible to the hashes, but the remediation's stored state says a record is missing."""
    from remediator.lifecycle.runtime import with_state
    from tests.store.test_contract import make

    clock = Clock()
    path = tmp_path / "c.db"
    with SQLiteStore(path, clock=clock) as store:
        rem = make()
        opened = AuditEvent(remediation_id=rem.id, event="approval_requested", actor="defender", at=clock())
        stored, _ = store.create(rem, audit=with_state([opened], "pending_approval"))
        approved = AuditEvent(remediation_id=rem.id, event="approved", actor="slack:U1", at=clock())
        assert store.transition(stored, "approved", from_states=("pending_approval",),
                                audit=with_state([approved], "approved")) is not None
    assert main(["audit", "verify", "--store", str(path)]) == 0
    capsys.readouterr()
    attacker = sqlite3.connect(path)
    attacker.execute("DROP TRIGGER audit_no_delete")
    attacker.execute("DELETE FROM audit WHERE chain = ? AND position = 2", (rem.id,))
    attacker.commit()
    attacker.close()
    assert main(["audit", "verify", "--store", str(path)]) == 1
    out = capsys.readouterr().out
    assert (f"missing   {rem.id}#2: remediation {rem.id} is approved but its last state record ({rem.id}#1) says "
            "pending_approval: the record of its move to approved is missing") in out
    assert "1 remediation, 1 with an incomplete trail" in out


@pytest.mark.parametrize("rid", ["_Zq3dE9xw0bT1kYpL2mNvAa", "-Zq3dE9xw0bT1kYpL2mNvAa", "_system-Zq3dE9xw0bT1kY"])
def test_a_remediation_whose_id_starts_like_a_system_chain_is_held_to_its_trail(tmp_path: Path, rid: str) -> None:
    """Remediation ids are URL-safe base64 (``_`` and ``-`` included): one in 32 starts with ``_``.
    Its chain is a remediation's, checked for its states like any other (it was taken for a system
    chain and never checked: an intermittent miss in the evidence report)."""
    from remediator.lifecycle.runtime import with_state
    from tests.store.test_contract import make

    clock = Clock()
    with SQLiteStore(tmp_path / "u.db", clock=clock) as store:
        rem = make(id=rid)
        opened = AuditEvent(remediation_id=rem.id, event="approval_requested", actor="defender", at=clock())
        stored, _ = store.create(rem, audit=with_state([opened], "pending_approval"))
        assert verify_store(store).ok
        # a state written around the trail (no record of it)
        assert store.transition(stored, "approved", from_states=("pending_approval",)) is not None
        result = verify_store(store)
        assert not result.ok
        assert [p.kind for p in result.problems] == ["missing"]
        assert rid in result.problems[0].line()
