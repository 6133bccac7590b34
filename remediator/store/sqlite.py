"""The embedded store: one SQLite file (stdlib ``sqlite3``), safe across threads and processes.

Concurrency design
------------------
- **One connection per store object per process**, opened with ``check_same_thread=False`` and
  used under a ``threading.Lock``: calls from many threads are serialized in-process (each is a
  few statements, well under a millisecond), so threads never spin in SQLite's busy handler
  against each other, and ``:memory:`` works (it is one database per connection). A process
  that inherits a store through ``fork`` opens its own connection on first use.
- **Across processes** (or two store objects on one file) SQLite's file locks decide: the file is
  in WAL mode (readers never block the writer), every multi-statement write runs in
  ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction never has to upgrade
  from read to write and hit ``SQLITE_BUSY``), and ``busy_timeout`` makes a writer wait for
  another process's transaction instead of failing. ``synchronous=NORMAL`` under WAL: a commit
  is durable against a process crash; an OS crash or power loss can lose the last transactions
  but never corrupts the file.
- **Compare-and-set** is a single ``UPDATE … WHERE id=? AND version=? AND state IN (…)``; the
  row count says who won. ``version`` is an integer counter (``Remediation.version`` is its text).
- **Dedup** is a constraint of the schema, not a protocol between statements: a partial unique
  index on ``remediations(dedup_key) WHERE state IN (<open states>)``. ``create`` is one
  ``INSERT … ON CONFLICT (dedup_key) WHERE … DO NOTHING`` (no row → read the holder in the same
  transaction); a transition to a final state drops the row out of the index by changing its
  state, and none leads back to an open one (``TRANSITIONS``). "At most one open remediation per
  key" therefore holds at every commit, whatever the client. (A separate ``dedup`` table does the
  same with one more statement per create and per final transition; the index also makes
  ``create`` a single B-tree cheaper.)
- **Queue**: ``dequeue`` is one ``UPDATE … RETURNING`` that picks the oldest visible job, hides it
  until ``now + visibility`` and gives it a fresh receipt; ``complete`` deletes by id *and*
  receipt, so a worker whose delivery timed out cannot delete the redelivered job.
- **Leases** (``acquire_lease``/``renew_lease``/``check_lease``; ``acquire_lock`` is the same without
  the token): one row per key with its owner, expiry and a fencing ``token`` that one upsert bumps
  on every acquisition (``… DO UPDATE … WHERE`` the owner is the same or the lease expired,
  ``RETURNING token``; schema version 5); a release keeps the row, expired and without owner, so the token keeps
  growing. ``extend`` moves a dequeued job's ``visible_us`` on if its receipt is still current.
- **Time** comes from the injected ``clock`` (aware UTC) and is stored as integer microseconds
  since the epoch where SQL compares it (lock expiry, job visibility).

The audit table is append-only: the store has no API to change it, and triggers refuse ``UPDATE``
and ``DELETE`` on it from any client. Its records are hash-chained (``remediator.lifecycle.chain``):
each row holds its chain, position, the previous record's hash and its own; an append reads the
chain's last row and inserts in one ``BEGIN IMMEDIATE`` transaction, and a unique index on
``(chain, position)`` makes a second writer at the same position fail instead of forking the chain.
``anchor`` lists the heads of the chains that grew since the previous anchor (by the global ``seq``,
exact: it reads and appends in one transaction). The triggers only stop honest clients: someone
with the file can drop them, which is what the chains and anchors make visible.

**State and trail move together**: ``create``/``create_many``, ``transition`` and ``update`` write the
audit records they are given (``audit=``) in the same ``BEGIN IMMEDIATE`` transaction as the row, so a
crash or an error between them leaves neither.

**Quarantine** (schema version 4): a remediation, inbox row or job whose stored text cannot be decoded
is copied to the ``quarantine`` table (source, key, error, time, the text) and deleted from where it
was, with a ``quarantined`` system record, in one transaction; the read that met it goes on.

Schema version 3 added the chains. Upgrading a version-2 file chains its existing records in
place, in ``seq`` order (their hashes are computed at upgrade time, so they attest the records as
they were then, not before), and appends a ``chain_upgrade`` record saying how many there were.
"""

from __future__ import annotations

import builtins
import logging
import os
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from remediator.lifecycle.chain import ANCHOR_CHAIN, GENESIS, ChainRecord, anchors, chain_for, record_hash
from remediator.lifecycle.model import (
    OPEN_STATES,
    QUARANTINE_EVENT,
    AuditEvent,
    Inbound,
    Job,
    Quarantined,
    QuarantineSource,
    Remediation,
    State,
    check_states,
    error_summary,
)
from remediator.lifecycle.store import Audit, audit_events
from remediator.store import codec
from remediator.words import plural

log = logging.getLogger(__name__)

_SCHEMA_VERSION = 6
_RAW_KEPT = 30_000  # characters of a quarantined row's text kept

# sqlite >= 3.35 for UPDATE … RETURNING and upsert … RETURNING.
if sqlite3.sqlite_version_info < (3, 35, 0):  # pragma: no cover - checked on the build machine
    raise ImportError(f"remediator's SQLite store needs SQLite >= 3.35 (found {sqlite3.sqlite_version})")

_OPEN_SQL = "(" + ", ".join(f"'{state}'" for state in sorted(OPEN_STATES)) + ")"
_DEDUP_INDEX = f"CREATE UNIQUE INDEX remediations_open_dedup ON remediations (dedup_key) WHERE state IN {_OPEN_SQL}"

_UNANNOUNCED_INDEX = ("CREATE INDEX remediations_unannounced ON remediations (state) "
                      "WHERE state = 'pending_approval' AND announced = 0")
# The inbox: one row per finding id received. ``waiting`` until a plan job plans it; then the
# remediation it opened or joined, kept so that a redelivery is recognised on arrival. A rowid
# table: documents are appended and the finding ids indexed (WITHOUT ROWID, with rows of a few
# KiB, made a 10,000-finding ingest ~1.3x slower).
_INBOX = """CREATE TABLE inbox (
    finding_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    received_at TEXT NOT NULL,
    waiting INTEGER NOT NULL,
    remediation_id TEXT,
    planned_at TEXT
)"""
_INBOX_INDEX = "CREATE INDEX inbox_planned ON inbox (planned_at) WHERE waiting = 0"
_WAITING_INDEX = "CREATE INDEX inbox_waiting ON inbox (received_at) WHERE waiting = 1"
_QUARANTINE = """CREATE TABLE quarantine (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    error TEXT NOT NULL,
    at TEXT NOT NULL,
    raw TEXT NOT NULL
)"""
_AUDIT_NO_UPDATE = ("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN "
                    "SELECT RAISE(ABORT, 'audit is append-only'); END")
_AUDIT_NO_DELETE = ("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN "
                    "SELECT RAISE(ABORT, 'audit is append-only'); END")
_AUDIT_CHAIN_INDEX = "CREATE UNIQUE INDEX audit_chain ON audit (chain, position)"
_CHAIN_HEAD = "SELECT position, hash FROM audit WHERE chain = ? ORDER BY position DESC LIMIT 1"
_INSERT_AUDIT = "INSERT INTO audit (remediation_id, doc, chain, position, prev, hash) VALUES (?, ?, ?, ?, ?, ?)"
Upgrade = tuple[str | Callable[[sqlite3.Connection, datetime], None], ...]


def _chain_existing(conn: sqlite3.Connection, now: datetime) -> None:
    """Version 2 → 3: chain the records already there, in ``seq`` order, then say so in the trail."""
    heads: dict[str, tuple[int, str]] = {}
    count = 0
    rows = conn.execute("SELECT seq, remediation_id, doc FROM audit ORDER BY seq").fetchall()
    for seq, rid, doc in rows:
        chain = chain_for(rid, codec.dt_from_str(str(codec.loads(doc)["at"])))
        position, prev = heads.get(chain, (0, GENESIS))
        digest = record_hash(chain, position + 1, prev, doc)
        conn.execute("UPDATE audit SET chain = ?, position = ?, prev = ?, hash = ? WHERE seq = ?",
                     (chain, position + 1, prev, digest, seq))
        heads[chain] = (position + 1, digest)
        count += 1
    event = AuditEvent(remediation_id=None, event="chain_upgrade", actor="system", at=now,
                       detail={"from_version": 2, "to_version": 3, "records_chained": count,
                               "through_seq": rows[-1][0] if rows else 0,
                               "note": "records written before this upgrade were chained when it ran; "
                                       "their hashes attest them as they were then"})
    _append_audit(conn, event)


_LOCKS = """CREATE TABLE locks (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_us INTEGER NOT NULL,
    token INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID"""


def _add_lock_tokens(conn: sqlite3.Connection) -> None:
    """Version 3 → 4: the locks' fencing tokens (a lock taken before counts from 0)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'locks'").fetchone() is None:
        conn.execute(_LOCKS)
    else:
        conn.execute("ALTER TABLE locks ADD COLUMN token INTEGER NOT NULL DEFAULT 0")


_JOBS = """CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    visible_us INTEGER NOT NULL,
    receipt TEXT NOT NULL DEFAULT '',
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    lane INTEGER NOT NULL DEFAULT 1
)"""
# the urgent lane (0) first, then the rest (1); within a lane, by visibility and order of arrival
_JOBS_INDEX = "CREATE INDEX jobs_by_lane ON jobs (lane, visible_us, seq)"


def _add_job_lanes(conn: sqlite3.Connection) -> None:
    """Version 5 → 6: the jobs' lanes (a job queued before is in the ordinary lane)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").fetchone() is None:
        conn.execute(_JOBS)
    else:
        conn.execute("ALTER TABLE jobs ADD COLUMN lane INTEGER NOT NULL DEFAULT 1")
        conn.execute("DROP INDEX IF EXISTS jobs_by_visibility")
    conn.execute(_JOBS_INDEX)
# Version 1 → 2: the inbox and the announced flag (rows stored by version 1 were posted at ingest).
# Version 2 → 3: the audit trail's hash chains (existing records chained in place, see the docstring).
# Version 3 → 4: the locks' fencing tokens (a lock taken before counts from 0).
# Version 5 → 6: the jobs' lanes (a job queued before is in the ordinary lane).
_UPGRADES: dict[int, Upgrade] = {
    1: ("ALTER TABLE remediations ADD COLUMN announced INTEGER NOT NULL DEFAULT 1",
        _UNANNOUNCED_INDEX, _INBOX, _INBOX_INDEX, _WAITING_INDEX),
    2: ("ALTER TABLE audit ADD COLUMN chain TEXT", "ALTER TABLE audit ADD COLUMN position INTEGER",
        "ALTER TABLE audit ADD COLUMN prev TEXT", "ALTER TABLE audit ADD COLUMN hash TEXT",
        "DROP TRIGGER IF EXISTS audit_no_update", _chain_existing, _AUDIT_NO_UPDATE, _AUDIT_CHAIN_INDEX),
    3: (_QUARANTINE,),
    4: (lambda conn, _now: _add_lock_tokens(conn),),
    5: (lambda conn, _now: _add_job_lanes(conn),),
}

_SCHEMA = f"""
CREATE TABLE remediations (
    id TEXT PRIMARY KEY,
    dedup_key TEXT NOT NULL,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    announced INTEGER NOT NULL DEFAULT 1
);
{_DEDUP_INDEX};
{_UNANNOUNCED_INDEX};
{_INBOX};
{_INBOX_INDEX};
{_WAITING_INDEX};
{_QUARANTINE};
{_LOCKS};
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    remediation_id TEXT,
    doc TEXT NOT NULL,
    chain TEXT,
    position INTEGER,
    prev TEXT,
    hash TEXT
);
CREATE INDEX audit_by_remediation ON audit (remediation_id, seq);
{_AUDIT_CHAIN_INDEX};
{_AUDIT_NO_UPDATE};
{_AUDIT_NO_DELETE};
{_JOBS};
{_JOBS_INDEX};
CREATE TABLE flags (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE counters (
    name TEXT NOT NULL,
    window TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (name, window)
) WITHOUT ROWID;
"""

_INSERT_REMEDIATION = (
    "INSERT INTO remediations (id, dedup_key, state, version, doc, announced) VALUES (?, ?, ?, 1, ?, ?) "  # noqa: S608
    f"ON CONFLICT (dedup_key) WHERE state IN {_OPEN_SQL} DO NOTHING"
)
# The exact WHERE text of the partial index, so the planner uses it (it only contains open rows).
_OPEN_HOLDER = f"SELECT version, doc, id FROM remediations WHERE dedup_key = ? AND state IN {_OPEN_SQL}"  # noqa: S608
_SAME_BY_ID = "SELECT version, doc, id FROM remediations WHERE id = ? AND dedup_key = ?"
_RECEIVE = (
    "INSERT INTO inbox (finding_id, doc, received_at, waiting) VALUES (?, ?, ?, 1) "  # noqa: S608 - constants
    "ON CONFLICT (finding_id) DO UPDATE SET doc = excluded.doc, received_at = excluded.received_at, waiting = 1, "
    "remediation_id = NULL, planned_at = NULL WHERE inbox.waiting = 0 AND (inbox.remediation_id IS NULL OR "
    f"NOT EXISTS (SELECT 1 FROM remediations r WHERE r.id = inbox.remediation_id AND r.state IN {_OPEN_SQL}))"
)
_DEQUEUE = (
    "UPDATE jobs SET visible_us = ?, receipt = ?, dequeue_count = dequeue_count + 1 "
    "WHERE seq = (SELECT seq FROM jobs WHERE visible_us <= ? ORDER BY lane, visible_us, seq LIMIT 1) "
    "RETURNING id, kind, payload, dequeue_count, lane"
)
# A released lock keeps its row (owner '', expired), so its fencing token keeps growing.
_ACQUIRE = (
    "INSERT INTO locks (key, owner, expires_us, token) VALUES (?, ?, ?, 1) "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_us = excluded.expires_us, "
    "token = locks.token + 1 WHERE locks.owner = excluded.owner OR locks.expires_us <= ? RETURNING token"
)
_INCR = (
    "INSERT INTO counters (name, window, n) VALUES (?, ?, 1) "
    "ON CONFLICT (name, window) DO UPDATE SET n = n + 1 RETURNING n"
)


# Bumped in a child after fork, so a store inherited through fork reopens its connection without
# a getpid() system call on every operation.
_fork_generation = 0


def _after_fork_in_child() -> None:
    global _fork_generation  # noqa: PLW0603 - process-wide by nature
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


class SQLiteStore(AbstractContextManager["SQLiteStore", None]):
    """``Store`` on one SQLite file (``":memory:"`` for a private in-memory database).

    ``clock`` returns the current time as an aware UTC datetime (tests and the engine control
    lock TTLs and job visibility with it); ``busy_timeout`` is how long a write waits for another
    process's transaction before ``sqlite3.OperationalError: database is locked``.
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:", *, clock: Callable[[], datetime] | None = None,
                 busy_timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._clock = clock or _utcnow
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()  # re-entrant: calls inside batch() hold it already
        self._generation = _fork_generation
        self._conn: sqlite3.Connection | None = self._open()

    # -- connection management -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        memory = self.path == ":memory:" or self.path.startswith("file::memory:")
        if not memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False, cached_statements=256)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if not memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise sqlite3.OperationalError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -16384")  # 16 MiB of page cache per connection
            # Checkpoint the WAL into the database every ~16 MiB instead of every ~4 MiB (fewer, larger
            # checkpoints: a page touched by many commits is copied once), and cap the idle WAL file size.
            conn.execute("PRAGMA wal_autocheckpoint = 4000")
            conn.execute("PRAGMA journal_size_limit = 67108864")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Create the schema on first use; keep the dedup index in step with ``OPEN_STATES``."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        index = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'remediations_open_dedup'").fetchone()
        if version == _SCHEMA_VERSION and index is not None and index[0] == _DEDUP_INDEX:
            return
        with _transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            if version == 0:
                for statement in _SCHEMA.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                version = _SCHEMA_VERSION
            while version in _UPGRADES:
                for step in _UPGRADES[version]:
                    if isinstance(step, str):
                        conn.execute(step)
                    else:
                        step(conn, self._clock())
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
            if version != _SCHEMA_VERSION:
                raise sqlite3.DatabaseError(
                    f"{self.path}: store schema version {version}; this remediator reads version {_SCHEMA_VERSION}")
            index = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'remediations_open_dedup'").fetchone()
            if index is None or index[0] != _DEDUP_INDEX:  # the set of open states changed in code
                conn.execute("DROP INDEX IF EXISTS remediations_open_dedup")
                try:
                    conn.execute(_DEDUP_INDEX)
                except sqlite3.IntegrityError as exc:
                    raise sqlite3.DatabaseError(
                        f"{self.path}: two open remediations share a dedup key under the new open states "
                        f"{_OPEN_SQL}; close one of them with an older remediator first") from exc

    def _connection(self) -> sqlite3.Connection:
        """The connection of this process (call with ``self._lock`` held)."""
        if self._generation != _fork_generation:  # inherited through fork: never use the parent's connection
            self._generation = _fork_generation
            self._conn = self._open()
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"the store on {self.path} is closed")
        return self._conn

    @contextmanager
    def _locked(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction under the in-process lock."""
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT`` around every write in the block (see ``Store.batch``).

        The in-process lock is held for the whole block, so other threads wait for it; nested
        transactions inside become savepoints."""
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                yield

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._generation == _fork_generation:
                self._conn.close()
            self._conn = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def _now_us(self) -> int:
        return codec.to_micros(self._clock())

    # -- remediations ----------------------------------------------------------------------------

    def create(self, remediation: Remediation, *, audit: Audit | None = None) -> tuple[Remediation, bool]:
        events = audit_events(audit, remediation.id)
        row = _row(remediation)
        with self._lock:
            conn = self._connection()
            if not events:
                # The common case (a new key, or a final state) is one autocommit INSERT; a conflict is
                # settled in a write transaction, so the holder read cannot race its transition.
                try:
                    if conn.execute(_INSERT_REMEDIATION, row).rowcount == 1:
                        return codec.with_version(remediation, "1"), True
                except sqlite3.IntegrityError:
                    pass
            with _transaction(conn):
                return _create_in(conn, remediation, row, events, now=self._clock())

    def create_many(self, remediations: Iterable[Remediation], *,
                    audits: Sequence[Audit | None] | None = None) -> builtins.list[tuple[Remediation, bool]]:
        """``create`` for a batch in one transaction (all or nothing); see ``Store.create_many``."""
        items = list(remediations)
        if not items:
            return []
        if audits is not None and len(audits) != len(items):
            raise ValueError(f"create_many: {plural(len(audits), 'audit')} for {plural(len(items), 'remediation')}")
        given = [audit_events(a, rem.id) for rem, a in zip(items, audits, strict=True)] if audits is not None \
            else [()] * len(items)
        with self._write() as conn:  # rows are encoded one at a time: a 10,000-item batch never holds them all
            now = self._clock()
            return [_create_in(conn, rem, _row(rem), events, now=now) for rem, events in zip(items, given, strict=True)]

    def get(self, remediation_id: str) -> Remediation | None:
        """The remediation, or None (unknown, or its row could not be decoded: then it is quarantined)."""
        with self._locked() as conn:
            row = conn.execute("SELECT version, doc FROM remediations WHERE id = ?", (remediation_id,)).fetchone()
        return None if row is None else self._decoded(remediation_id, row[0], row[1])

    def _decoded(self, rid: str, version: object, doc: object) -> Remediation | None:
        """A stored remediation row decoded, or quarantined (None) when it cannot be."""
        try:
            return codec.decode_remediation(cast(str, doc), version=str(version))
        except codec.DECODE_ERRORS as exc:
            self._quarantine("remediation", rid, doc, exc, "DELETE FROM remediations WHERE id = ?")
            return None

    def quarantine(self, *, source: QuarantineSource, key: str, raw: str, error: str) -> None:
        """Keep ``raw`` in the quarantine and audit it, in one transaction (see ``Store.quarantine``)."""
        self._quarantine(source, key, raw, error, "")

    def _quarantine(self, source: QuarantineSource, key: str, raw: object, exc: BaseException | str,
                    delete: str) -> None:
        """Move a row that cannot be decoded to the quarantine (``delete`` removes it, with ``key``) and
        audit it, in one transaction."""
        with self._write() as conn:
            _quarantine_in(conn, source, key, raw, exc, delete=delete, now=self._clock())

    def quarantined(self, *, limit: int = 1000) -> builtins.list[Quarantined]:
        with self._locked() as conn:
            rows = conn.execute("SELECT source, key, error, at, raw FROM quarantine ORDER BY seq LIMIT ?",
                                (limit,)).fetchall()
        return [Quarantined(source=source, key=key, error=error, at=codec.dt_from_str(at), raw=raw)
                for source, key, error, at, raw in rows]

    def quarantine_count(self) -> int:
        with self._locked() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])

    def transition(self, current: Remediation, to: State, *, from_states: Iterable[State],
                   audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set of the state (see ``Store.transition``): one ``UPDATE``.

        The new value is ``current`` with ``state=to`` and ``updates`` applied (``updated_at``
        defaults to the clock). Moving to a final state frees the dedup key by the same write
        (``TRANSITIONS`` has no move back to an open state, so none can collide on the key).
        """
        froms, new = codec.moved(current, to, from_states=from_states, updates=updates, now=self._clock())
        events = audit_events(audit, current.id)
        version = _as_counter(current.version)
        if not froms or version is None:
            return None
        doc = codec.encode_remediation(new)
        sql = ("UPDATE remediations SET state = ?, version = version + 1, doc = ?, announced = ? "  # noqa: S608
               f"WHERE id = ? AND version = ? AND state IN ({_placeholders(len(froms))})")
        with self._write() if events else self._locked() as conn:  # the row and its records: one transaction
            won = conn.execute(sql, (to, doc, new.announced, current.id, version, *froms)).rowcount == 1
            for event in events if won else ():
                _append_audit(conn, event)
        return codec.with_version(new, str(version + 1)) if won else None

    def update(self, current: Remediation, *, audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set of fields other than the state (see ``Store.update``): one ``UPDATE``, and
        the records of ``audit`` in the same transaction."""
        events = audit_events(audit, current.id)
        version = _as_counter(current.version)
        if version is None:
            return None
        new = codec.apply_updates(current, state=current.state, updates=updates, now=self._clock())
        doc = codec.encode_remediation(new)
        with self._write() if events else self._locked() as conn:
            cur = conn.execute("UPDATE remediations SET version = version + 1, doc = ?, announced = ? "
                               "WHERE id = ? AND version = ? AND state = ?",
                               (doc, new.announced, current.id, version, current.state))
            won = cur.rowcount == 1
            for event in events if won else ():
                _append_audit(conn, event)
        return codec.with_version(new, str(version + 1)) if won else None

    def list(self, *, states: Iterable[State] | None = None, limit: int = 1000) -> builtins.list[Remediation]:
        """Remediations (in the given states) in creation order, at most ``limit``.

        Open states are read through the dedup index (which holds only open remediations); a
        query that includes final states scans the table.
        """
        params: builtins.list[object]
        if states is None:
            sql, params = "SELECT version, doc, id FROM remediations ORDER BY rowid LIMIT ?", [limit]
        else:
            wanted = check_states(states, "states")
            if not wanted:
                return []
            # Only open states: walk the partial index (it holds just the open remediations, so the
            # periodic expiry sweep stays cheap however many final ones pile up).
            source = (f"remediations INDEXED BY remediations_open_dedup WHERE state IN {_OPEN_SQL} AND"
                      if all(s in OPEN_STATES for s in wanted) else "remediations WHERE")
            sql = (f"SELECT version, doc, id FROM {source} state IN "  # noqa: S608 - constants and placeholders
                   f"({_placeholders(len(wanted))}) ORDER BY rowid LIMIT ?")
            params = [*wanted, limit]
        with self._locked() as conn:
            rows = conn.execute(sql, params).fetchall()
        out: builtins.list[Remediation] = []
        for version, doc, rid in rows:  # one that cannot be decoded is quarantined; the others flow on
            rem = self._decoded(str(rid), version, doc)
            if rem is not None:
                out.append(rem)
        return out

    def remediation_ids(self) -> builtins.list[str]:
        """Every remediation's id (audit verification: which chains must exist), no documents read."""
        with self._locked() as conn:
            return [str(r[0]) for r in conn.execute("SELECT id FROM remediations").fetchall()]

    def remediation_states(self) -> builtins.list[tuple[str, State]]:
        """``(id, state)`` of every remediation in creation order, no documents read."""
        with self._locked() as conn:
            rows = conn.execute("SELECT id, state FROM remediations ORDER BY rowid").fetchall()
        return [(str(i), cast(State, s)) for i, s in rows]

    def unannounced(self, *, limit: int = 10_000) -> builtins.list[tuple[str, str]]:
        """Through the partial index ``remediations_unannounced`` (only such rows are in it). A row whose
        document is not even JSON is quarantined here (it could never be claimed)."""
        with self._locked() as conn:
            rows = conn.execute("SELECT id, dedup_key, json_valid(doc) FROM remediations INDEXED BY "
                                "remediations_unannounced WHERE state = 'pending_approval' AND announced = 0 "
                                "ORDER BY rowid LIMIT ?", (limit,)).fetchall()
        for rid, _, valid in rows:
            if not valid:
                self.get(str(rid))  # the decode fails and quarantines it
        return [(str(i), str(k)) for i, k, valid in rows if valid]

    # -- inbox -----------------------------------------------------------------------------------

    def receive(self, findings: Sequence[Inbound]) -> builtins.list[bool]:
        """One ``INSERT … ON CONFLICT DO UPDATE … WHERE`` per finding, all in one transaction: the
        row count says queued (inserted, or a finished row reset to waiting) or duplicate."""
        if not findings:
            return []
        with self._write() as conn:
            return [conn.execute(_RECEIVE, (f.finding_id, codec.dumps(codec.inbound_to_dict(f)),
                                            codec.dt_to_str(f.received_at))).rowcount == 1 for f in findings]

    def inbound(self, finding_ids: Iterable[str]) -> builtins.list[Inbound]:
        wanted = list(dict.fromkeys(finding_ids))
        found: dict[str, Inbound] = {}
        bad: builtins.list[tuple[str, object, BaseException]] = []
        with self._locked() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                sql = ("SELECT finding_id, doc, received_at, waiting, remediation_id, planned_at FROM inbox "  # noqa: S608
                       f"WHERE finding_id IN ({_placeholders(len(chunk))})")
                for fid, doc, received, waiting, rid, planned in conn.execute(sql, chunk).fetchall():
                    try:
                        found[fid] = codec.inbound_from_parts(
                            codec.loads(doc), finding_id=fid, received_at=received, waiting=bool(waiting),
                            remediation_id=rid, planned_at=planned)
                    except codec.DECODE_ERRORS as exc:
                        bad.append((fid, doc, exc))
        for fid, doc, error in bad:  # quarantined, and left out like an unknown id
            self._quarantine("inbox", fid, doc, error, "DELETE FROM inbox WHERE finding_id = ?")
        return [found[f] for f in wanted if f in found]

    def waiting(self, *, received_before: datetime, received_after: datetime | None = None,
                limit: int = 1000) -> builtins.list[str]:
        after = codec.dt_to_str(received_after) if received_after is not None else ""
        with self._locked() as conn:
            rows = conn.execute("SELECT finding_id FROM inbox WHERE waiting = 1 AND received_at < ? "
                                "AND received_at >= ? ORDER BY received_at LIMIT ?",
                                (codec.dt_to_str(received_before), after, limit)).fetchall()
        return [str(r[0]) for r in rows]

    def mark_planned(self, outcomes: Mapping[str, str | None], *, at: datetime) -> None:
        if not outcomes:
            return
        when = codec.dt_to_str(at)
        with self._write() as conn:
            conn.executemany("UPDATE inbox SET waiting = 0, remediation_id = ?, planned_at = ? WHERE finding_id = ?",
                             [(rid, when, fid) for fid, rid in outcomes.items()])

    def prune_inbox(self, *, planned_before: datetime) -> int:
        with self._locked() as conn:
            cur = conn.execute("DELETE FROM inbox WHERE waiting = 0 AND planned_at < ?",
                               (codec.dt_to_str(planned_before),))
        return cur.rowcount

    # -- locks -----------------------------------------------------------------------------------

    def acquire_lock(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``owner`` until now + ``ttl_seconds``; the owner re-acquiring extends it.

        Not counted: one ``release_lock`` by the owner frees it however often it was acquired.
        """
        return self.acquire_lease(key, owner, ttl_seconds) is not None

    def release_lock(self, key: str, owner: str) -> None:
        """Free ``key`` if ``owner`` holds it; otherwise nothing happens. The row stays (expired, no
        owner) so that the key's fencing token keeps growing."""
        with self._locked() as conn:
            conn.execute("UPDATE locks SET owner = '', expires_us = 0 WHERE key = ? AND owner = ?", (key, owner))

    def acquire_lease(self, key: str, owner: str, ttl_seconds: float) -> int | None:
        """One upsert: inserted with token 1, or taken over (own, or expired) with token + 1."""
        now = self._now_us()
        with self._locked() as conn:
            rows = conn.execute(_ACQUIRE, (key, owner, now + round(ttl_seconds * 1_000_000), now)).fetchall()
        return int(rows[0][0]) if rows else None

    def renew_lease(self, key: str, owner: str, token: int, ttl_seconds: float) -> bool:
        expires = self._now_us() + round(ttl_seconds * 1_000_000)
        with self._locked() as conn:
            cur = conn.execute("UPDATE locks SET expires_us = ? WHERE key = ? AND owner = ? AND token = ?",
                               (expires, key, owner, token))
        return cur.rowcount == 1

    def check_lease(self, key: str, owner: str, token: int) -> bool:
        now = self._now_us()
        with self._locked() as conn:
            row = conn.execute("SELECT 1 FROM locks WHERE key = ? AND owner = ? AND token = ? AND expires_us > ?",
                               (key, owner, token, now)).fetchone()
        return row is not None

    # -- audit -----------------------------------------------------------------------------------

    def audit(self, event: AuditEvent) -> None:
        """Append to the event's chain: read its head and insert, in one transaction."""
        with self._write() as conn:
            _append_audit(conn, event)

    def audit_log(self, remediation_id: str | None = None) -> builtins.list[AuditEvent]:
        """Events in append order (``seq`` is the store-wide sequence number); anchors left out."""
        with self._locked() as conn:
            if remediation_id is None:
                rows = conn.execute("SELECT seq, doc, chain, position, hash FROM audit WHERE chain IS NOT ? "
                                    "ORDER BY seq", (ANCHOR_CHAIN,)).fetchall()
            else:
                rows = conn.execute("SELECT seq, doc, chain, position, hash FROM audit WHERE remediation_id = ? "
                                    "ORDER BY seq", (remediation_id,)).fetchall()
        return [replace(codec.audit_from_dict(codec.loads(doc), seq=seq), chain=chain or "", position=position or 0,
                        hash=digest or "") for seq, doc, chain, position, digest in rows]

    def audit_records(self) -> Iterator[ChainRecord]:
        """Every record by chain and position (through the unique index), read in pages so the
        store's lock is not held while the caller works; then any row missing its chain columns
        (only an edit of the file makes one) with position 0 and no hash."""
        after: tuple[str, int, int] = ("", -1, -1)
        while True:
            with self._locked() as conn:
                rows = conn.execute(
                    "SELECT chain, position, prev, hash, doc, seq FROM audit WHERE (chain, position, seq) > (?, ?, ?) "
                    "ORDER BY chain, position, seq LIMIT 5000", after).fetchall()
            if not rows:
                break
            for chain, position, prev, digest, doc, seq in rows:
                yield ChainRecord(chain=chain, position=position, prev=prev or "", hash=digest or "", doc=doc, seq=seq)
            after = (rows[-1][0], rows[-1][1], rows[-1][5])
        with self._locked() as conn:
            loose = conn.execute("SELECT chain, doc, seq FROM audit WHERE chain IS NULL OR position IS NULL "
                                 "ORDER BY seq").fetchall()
        for chain, doc, seq in loose:
            yield ChainRecord(chain=chain or "", position=0, prev="", hash="", doc=doc, seq=seq)

    def anchor(self) -> int:
        """Anchor records over the heads of the chains written since the last anchor (``through_seq``)."""
        with self._write() as conn:
            last = conn.execute("SELECT doc FROM audit WHERE chain = ? ORDER BY position DESC LIMIT 1",
                                (ANCHOR_CHAIN,)).fetchone()
            since = int((codec.loads(last[0]).get("detail") or {}).get("through_seq") or 0) if last else 0
            heads = conn.execute(
                "SELECT a.chain, a.position, a.hash FROM audit a JOIN (SELECT chain, MAX(position) AS p FROM audit "
                "WHERE seq > ? AND chain IS NOT ? GROUP BY chain) h ON a.chain = h.chain AND a.position = h.p "
                "ORDER BY a.chain", (since, ANCHOR_CHAIN)).fetchall()
            if not heads:
                return 0
            through = conn.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
            now = self._clock()
            events = anchors(heads, at=now, through_seq=through)
            for event in events:
                _append_audit(conn, event)
            return len(events)

    # -- queue -----------------------------------------------------------------------------------

    def enqueue(self, job: Job, *, delay_seconds: float = 0) -> Job:
        job_id = uuid.uuid4().hex
        payload = codec.dumps(job.payload)
        visible = self._now_us() + max(0, round(delay_seconds * 1_000_000))
        with self._locked() as conn:
            conn.execute("INSERT INTO jobs (id, kind, payload, visible_us, lane) VALUES (?, ?, ?, ?, ?)",
                         (job_id, job.kind, payload, visible, 0 if job.urgent else 1))
        return replace(job, id=job_id, receipt="", dequeue_count=0)

    def dequeue(self, *, visibility_seconds: float = 60) -> Job | None:
        """The next visible job; one whose payload is not a JSON object is quarantined and the next one read."""
        while True:
            now = self._now_us()
            receipt = secrets.token_hex(16)
            with self._locked() as conn:
                rows = conn.execute(_DEQUEUE, (now + round(visibility_seconds * 1_000_000), receipt, now)).fetchall()
            if not rows:
                return None
            job_id, kind, payload, count, lane = rows[0]
            try:
                body = codec.loads(payload)
                if not isinstance(body, dict):
                    raise TypeError(f"the payload is a JSON {type(body).__name__}, not an object")
            except codec.DECODE_ERRORS as exc:
                self._quarantine("job", str(job_id), f"{kind} {payload}", exc, "DELETE FROM jobs WHERE id = ?")
                continue
            return Job(kind=kind, payload=body, id=job_id, receipt=receipt, dequeue_count=count, urgent=lane == 0)

    def complete(self, job: Job) -> None:
        """Delete the job if ``job.receipt`` is its latest delivery; a stale receipt does nothing."""
        if not job.receipt:
            return
        with self._locked() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ? AND receipt = ?", (job.id, job.receipt))

    def extend(self, job: Job, seconds: float) -> Job | None:
        """Hide the job until now + ``seconds`` if ``job.receipt`` is still its delivery (same receipt)."""
        if not job.receipt:
            return None
        visible = self._now_us() + max(0, round(seconds * 1_000_000))
        with self._locked() as conn:
            cur = conn.execute("UPDATE jobs SET visible_us = ? WHERE id = ? AND receipt = ?",
                               (visible, job.id, job.receipt))
        return job if cur.rowcount == 1 else None

    # -- flags and counters ----------------------------------------------------------------------

    def get_flag(self, name: str) -> str | None:
        with self._locked() as conn:
            row = conn.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_flag(self, name: str, value: str | None) -> None:
        """Set ``name`` to ``value``; ``None`` removes it."""
        with self._locked() as conn:
            if value is None:
                conn.execute("DELETE FROM flags WHERE name = ?", (name,))
            else:
                conn.execute("INSERT INTO flags (name, value) VALUES (?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    def incr_counter(self, name: str, window_start: datetime) -> int:
        with self._locked() as conn:
            rows = conn.execute(_INCR, (name, codec.dt_to_str(window_start))).fetchall()
        return int(rows[0][0])

    def prune_counters(self, *, before: datetime) -> int:
        """Windows are fixed-width UTC text, so they compare like the instants."""
        with self._locked() as conn:
            return int(conn.execute("DELETE FROM counters WHERE window < ?", (codec.dt_to_str(before),)).rowcount)


def _quarantine_in(conn: sqlite3.Connection, source: QuarantineSource, key: str, raw: object,
                   exc: BaseException | str, *, delete: str, now: datetime) -> None:
    """Inside a write transaction: keep ``raw`` in the quarantine, run ``delete`` (with ``key``) to
    remove it from where it was, and audit it."""
    error = error_summary(exc) if isinstance(exc, BaseException) else exc[:300]
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace") \
        if isinstance(raw, (bytes, memoryview)) else repr(raw)
    log.error("quarantined the %s %r: %s", source, key[:200], error)
    if delete:
        conn.execute(delete, (key,))
    conn.execute("INSERT INTO quarantine (source, key, error, at, raw) VALUES (?, ?, ?, ?, ?)",
                 (source, key, error, codec.dt_to_str(now), text[:_RAW_KEPT]))
    _append_audit(conn, AuditEvent(remediation_id=None, event=QUARANTINE_EVENT, actor="system", at=now,
                                   detail={"source": source, "key": key[:200], "error": error}))


def _append_audit(conn: sqlite3.Connection, event: AuditEvent) -> None:
    """Insert ``event`` at the head of its chain (call inside a write transaction)."""
    doc = codec.dumps(codec.audit_to_dict(event))
    chain = chain_for(event.remediation_id, event.at, event.chain)
    head = conn.execute(_CHAIN_HEAD, (chain,)).fetchone()
    position, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS)
    conn.execute(_INSERT_AUDIT, (event.remediation_id, doc, chain, position, prev,
                                 record_hash(chain, position, prev, doc)))


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; ``ROLLBACK`` on any exception (including a failed commit).

    Inside an open transaction (``batch``) it is a savepoint instead, released or rolled back alone.
    """
    if _active(conn):
        conn.execute("SAVEPOINT nested")
        try:
            yield
            conn.execute("RELEASE SAVEPOINT nested")
        except BaseException:
            conn.execute("ROLLBACK TO SAVEPOINT nested")
            conn.execute("RELEASE SAVEPOINT nested")
            raise
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _active(conn: sqlite3.Connection) -> bool:
    """Whether a transaction is open (a function, so checks before and after a yield stay distinct)."""
    return conn.in_transaction


_Row = tuple[str, str, str, str, bool]


def _row(rem: Remediation) -> _Row:
    return (rem.id, rem.dedup_key, rem.state, codec.encode_remediation(rem), rem.announced)


def _create_in(conn: sqlite3.Connection, rem: Remediation, row: _Row, events: Sequence[AuditEvent] = (), *,
               now: datetime) -> tuple[Remediation, bool]:
    """Insert (with its opening records) or find the open holder, inside a write transaction. A holder
    that cannot be decoded is quarantined (its key is free then) and the insert tried again."""
    for _ in range(3):
        try:
            return _create_once(conn, rem, row, events)
        except _Unreadable as bad:
            _quarantine_in(conn, "remediation", bad.rid, bad.doc, bad.error, now=now,
                           delete="DELETE FROM remediations WHERE id = ?")
    raise sqlite3.DatabaseError(f"dedup key {rem.dedup_key!r}: its holders keep being unreadable")


class _Unreadable(Exception):
    def __init__(self, rid: str, doc: str, error: BaseException) -> None:
        super().__init__(rid)
        self.rid, self.doc, self.error = rid, doc, error


def _create_once(conn: sqlite3.Connection, rem: Remediation, row: _Row,
                 events: Sequence[AuditEvent]) -> tuple[Remediation, bool]:
    try:
        if conn.execute(_INSERT_REMEDIATION, row).rowcount == 1:
            for event in events:
                _append_audit(conn, event)
            return codec.with_version(rem, "1"), True
        holder = conn.execute(_OPEN_HOLDER, (rem.dedup_key,)).fetchone()
        if holder is None:  # cannot happen: the conflict was with an open row, and we hold the write lock
            raise sqlite3.DatabaseError(f"dedup conflict on {rem.dedup_key!r} without an open holder")
    except sqlite3.IntegrityError as exc:  # the id exists: the same create again (whatever became of it), or a clash
        holder = conn.execute(_SAME_BY_ID, (rem.id, rem.dedup_key)).fetchone()
        if holder is None:
            raise ValueError(f"a remediation with id {rem.id!r} already exists") from exc
    try:
        return codec.decode_remediation(holder[1], version=str(holder[0])), False
    except codec.DECODE_ERRORS as exc:
        raise _Unreadable(str(holder[2]), str(holder[1]), exc) from exc


def _as_counter(version: str) -> int | None:
    try:
        return int(version)
    except ValueError:
        return None
