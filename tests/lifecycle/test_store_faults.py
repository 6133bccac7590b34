"""A store fault in the middle of an apply delays it, never decides it (issue 17), on SQLite.

Another process holding the database's write lock past the busy timeout ("database is locked")
right after the ARM write landed: before, the apply took the failed trail write for a failed
apply and ended ``failed`` (the change was written); now the job is left in the queue and its
next delivery recovers from ``applying``: the write verifies, one ``applied`` record, no second
write. An ARM write that is refused still ends ``failed``. (Table Storage: ``test_trail_faults``.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.evidence.verify import verify_store
from tests.support.engine import MEMBERS, World, make_world, network_assessment, storage_account

ACCOUNT = storage_account("sqlitelocked")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path, docs=[ACCOUNT])


class _ReleaseOnFirstComplaint(logging.Handler):
    """Commits the lock holder's transaction at the worker's first warning or error (the apply met
    the lock), so the rest of the delivery finds the database free again (a lock held for a while)."""

    def __init__(self, holder: sqlite3.Connection) -> None:
        super().__init__(logging.WARNING)
        self.holder = holder
        self.released = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if not self.released.is_set():
            self.released.set()
            self.holder.execute("COMMIT")


def test_a_lock_held_after_the_write_landed_delays_the_apply_and_the_recovery_records_one_applied(
        world: World) -> None:
    rem = world.ingest_one([network_assessment(ACCOUNT["id"])])
    assert len(rem.changes) == 1
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    world.store._connection().execute("PRAGMA busy_timeout = 200")  # "database is locked" after 0.2 s, not 30
    holder = sqlite3.connect(world.store.path, isolation_level=None, check_same_thread=False)
    release = _ReleaseOnFirstComplaint(holder)
    go = threading.Event()
    arrived = world.arm.stall("PATCH", "storageaccounts/sqlitelocked", until=go)

    def lock_when_the_write_arrives() -> None:
        if arrived.wait(30):
            holder.execute("BEGIN EXCLUSIVE")  # another process's long write, from the ARM write on
        go.set()

    locker = threading.Thread(target=lock_when_the_write_arrives, daemon=True)
    locker.start()
    logging.getLogger("remediator.worker").addHandler(release)
    try:
        world.engine.work()  # the apply meets the lock after the write landed: the job raises, stays queued
    finally:
        logging.getLogger("remediator.worker").removeHandler(release)
        locker.join(30)
        if not release.released.is_set():
            holder.execute("ROLLBACK")
        holder.close()
    assert release.released.is_set()
    assert world.rem(rem.id).state == "applying"
    assert "failed" not in world.events(rem.id)
    world.clock.advance(seconds=world.settings.lock_ttl.total_seconds() + 1)  # the job's visibility timeout
    world.engine.work()  # its redelivery recovers; then the reply
    assert world.rem(rem.id).state == "applied"
    writes = [r for r in world.arm.resource_writes if 200 <= r.status < 300]
    assert len(writes) == 1, [(r.method, r.path) for r in writes]
    applied = [e for e in world.trail(rem.id) if e.event == "applied"]
    assert len(applied) == 1
    assert applied[0].detail.get("recovered") is True
    assert [k for k, _, _ in world.chat.results(rem.id)] == ["applied"]
    result = verify_store(world.store)
    assert result.ok, [p.line() for p in result.problems]


def test_an_arm_write_refused_still_ends_failed(world: World) -> None:
    rem = world.ingest_one([network_assessment(ACCOUNT["id"])])
    assert world.engine.approve(rem.id, world.actor(MEMBERS[0])).ok
    world.arm.fail_next("PATCH", "storageaccounts/sqlitelocked", 400)
    world.engine.work()
    assert world.rem(rem.id).state == "failed"
    assert [k for k, _, _ in world.chat.results(rem.id)] == ["failed"]
    assert world.arm.resource_writes
    assert all(r.status >= 400 for r in world.arm.resource_writes)


def test_store_call_names_what_failed_and_keeps_the_cause() -> None:
    from remediator.errors import StoreUnavailable
    from remediator.lifecycle.runtime import store_call

    locked = sqlite3.OperationalError("database is locked")
    with pytest.raises(StoreUnavailable) as err, store_call("record 'change_applied' of r1"):
        raise locked
    assert str(err.value) == "the store could not record 'change_applied' of r1: OperationalError: database is locked"
    assert err.value.__cause__ is locked
    inner = StoreUnavailable("already told")
    with pytest.raises(StoreUnavailable) as again, store_call("anything"):
        raise inner
    assert again.value is inner  # not wrapped twice
