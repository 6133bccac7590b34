"""SQLite-only behaviour: processes racing on one file, persistence, schema guards, ``open_store``."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediator.errors import ConfigError
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Remediation
from remediator.store import SQLiteStore, codec, open_store
from tests.store.test_contract import make


def _approve_in_process(path: str, current: Remediation, start: object, out: object) -> None:
    """Child process: wait for the start signal, then try the same compare-and-set from 10 threads."""
    from concurrent.futures import ThreadPoolExecutor

    store = SQLiteStore(path)
    start.wait()  # type: ignore[attr-defined]
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: store.transition(current, "approved", from_states={"pending_approval"}),
                                range(10)))
    out.put(sum(r is not None for r in results))  # type: ignore[attr-defined]
    store.close()


def _race(target: Callable[..., None], args: tuple[object, ...], *, processes: int) -> int:
    """Start ``processes`` spawned processes on one signal; the sum of the wins they report."""
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, start, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return sum(out.get(timeout=5) for _ in procs)


@pytest.mark.slow(reason="spawns four Python processes racing on one SQLite file")
def test_processes_racing_on_one_file_have_exactly_one_winner(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    with SQLiteStore(path) as store:
        rem, _ = store.create(make())
    assert _race(_approve_in_process, (path, rem), processes=4) == 1
    with SQLiteStore(path) as store:
        final = store.get(rem.id)
    assert final is not None
    assert final.state == "approved"


def _create_in_process(path: str, key: str, start: object, out: object) -> None:
    store = SQLiteStore(path)
    start.wait()  # type: ignore[attr-defined]
    results = [store.create(make(dedup_key=key))[1] for _ in range(20)]
    out.put(sum(results))  # type: ignore[attr-defined]
    store.close()


@pytest.mark.slow(reason="spawns three Python processes racing on one SQLite file")
def test_processes_creating_one_key_open_one_remediation(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SQLiteStore(path).close()
    assert _race(_create_in_process, (path, "k"), processes=3) == 1
    with SQLiteStore(path) as store:
        assert len(store.list()) == 1


def test_everything_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "store.db"
    hour = datetime(2025, 1, 1, tzinfo=UTC)
    with SQLiteStore(path) as store:
        rem, _ = store.create(make(dedup_key="k"))
        store.audit(AuditEvent(remediation_id=rem.id, event="planned", actor="defender", at=hour))
        store.enqueue(Job(kind="apply", payload={"id": rem.id}))
        store.set_flag("paused", "yes")
        store.incr_counter("c", hour)
        assert store.acquire_lock("l", "w1", 3600)
    with SQLiteStore(path) as store:
        assert store.get(rem.id) == rem
        assert not store.create(make(dedup_key="k"))[1]
        assert [e.event for e in store.audit_log(rem.id)] == ["planned"]
        job = store.dequeue()
        assert job is not None
        assert job.payload == {"id": rem.id}
        assert store.get_flag("paused") == "yes"
        assert store.incr_counter("c", hour) == 2
        assert not store.acquire_lock("l", "w2", 60)


def test_the_file_is_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db", busy_timeout=7) as store:
        store.get("x")
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    store = SQLiteStore(tmp_path / "s.db", busy_timeout=7)
    assert store._conn is not None
    assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7000
    store.close()


def test_the_audit_table_refuses_updates_and_deletes_from_any_client(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.audit(AuditEvent(remediation_id="r", event="planned", actor="defender", at=datetime.now(UTC)))
    conn = sqlite3.connect(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET doc = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()


def test_the_database_itself_allows_one_open_remediation_per_key(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.create(make(dedup_key="k"))
    conn = sqlite3.connect(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        conn.execute("INSERT INTO remediations (id, dedup_key, state, version, doc) "
                     "VALUES ('x', 'k', 'approved', 1, '{}')")
    conn.execute("INSERT INTO remediations (id, dedup_key, state, version, doc) VALUES ('y', 'k', 'failed', 1, '{}')")
    conn.close()


def test_listing_open_states_walks_the_dedup_index(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.create(make())
        assert store._conn is not None
        statements: list[str] = []
        store._conn.set_trace_callback(statements.append)
        assert len(store.list(states=["pending_approval", "approved"])) == 1
        query = statements[-1]
        plan = store._conn.execute("EXPLAIN QUERY PLAN " + query).fetchall()
    assert "USING INDEX remediations_open_dedup" in " ".join(str(row) for row in plan)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(sqlite3.DatabaseError, match="schema version 99"):
        SQLiteStore(tmp_path / "s.db")


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    with SQLiteStore() as store, pytest.raises(ValueError, match="naive datetime"):
        store.create(make(created_at=datetime(2025, 1, 1)))


def test_a_closed_store_says_so() -> None:
    store = SQLiteStore()
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.get("x")


def test_a_memory_store_is_shared_by_its_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with SQLiteStore(":memory:") as store:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: store.create(make(dedup_key=f"k{i % 4}")), range(40)))
        assert len(store.list()) == 4


@pytest.mark.parametrize(("url", "expected"), [
    (":memory:", ":memory:"),
    ("sqlite://", ":memory:"),
    ("sqlite:///:memory:", ":memory:"),
    ("sqlite:///relative.db", "relative.db"),
    ("sqlite:////ABS/file.db", "/ABS/file.db"),
    ("plain/path.db", "plain/path.db"),
])
def test_open_store_sqlite_urls(url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if expected.startswith("/ABS"):
        url = url.replace("/ABS", str(tmp_path))
        expected = expected.replace("/ABS", str(tmp_path))
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == expected
    store.close()


@pytest.mark.parametrize("url", ["", "postgres://x/y", "sqlite:relative.db"])
def test_open_store_refuses_unknown_urls(url: str) -> None:
    with pytest.raises(ConfigError, match="store"):
        open_store(url)


def test_create_many_is_all_or_nothing() -> None:
    with SQLiteStore() as store:
        taken, _ = store.create(make(state="exempt"))
        batch = [make(dedup_key="a"), make(id=taken.id, dedup_key="b"), make(dedup_key="c")]
        with pytest.raises(ValueError, match="already exists"):
            store.create_many(batch)
        assert [r.id for r in store.list()] == [taken.id]
        assert store.create(make(dedup_key="a"))[1]


def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_remediations(tmp_path: Path) -> None:
    rem = make()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript(
        "CREATE TABLE remediations (id TEXT PRIMARY KEY, dedup_key TEXT NOT NULL, state TEXT NOT NULL, "
        "version INTEGER NOT NULL, doc TEXT NOT NULL);"
        "CREATE TABLE locks (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_us INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, remediation_id TEXT, doc TEXT NOT NULL);"
        "PRAGMA user_version = 1;")
    doc = json.loads(codec.encode_remediation(rem))
    del doc["announced"]  # version 1 did not have it
    conn.execute("INSERT INTO remediations VALUES (?, ?, ?, 1, ?)", (rem.id, rem.dedup_key, rem.state, json.dumps(doc)))
    conn.commit()
    conn.close()
    with SQLiteStore(tmp_path / "s.db") as store:
        got = store.get(rem.id)
        assert got is not None
        assert got.announced
        assert store.unannounced() == []
        assert store.receive([Inbound(finding_id="f", finding={}, source="t", received_at=datetime.now(UTC))]) == [True]
    conn = sqlite3.connect(tmp_path / "s.db")
    # on through 2 → 3 (the audit chains), 3 → 4, 4 → 5, 5 → 6
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
    assert [r[1] for r in conn.execute("PRAGMA table_info(locks)")] == ["key", "owner", "expires_us", "token"]
    assert "lane" in [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
    conn.close()
