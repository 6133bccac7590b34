"""``remediator.lifecycle.lease``: leases with fencing tokens, renewed in the background, checked
before writes; a job kept hidden while it runs. On the real SQLiteStore (the contract suite runs
the store's side on Azurite too)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediator.lifecycle.lease import JobDelivery, LeaseLost, Leases, keep_alive
from remediator.lifecycle.model import Job
from remediator.store import SQLiteStore
from tests.support.engine import FakeClock

KEYS = ["resource:/subscriptions/s/rg/a", "resource:/subscriptions/s/rg/b"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "s.db", clock=clock) as s:
        yield s


def test_leases_are_all_or_none(store: SQLiteStore) -> None:
    other = Leases(store, "w2", 60)
    assert other.acquire(KEYS[1:])
    mine = Leases(store, "w1", 60)
    assert not mine.acquire(KEYS)
    assert mine.tokens == {}
    assert store.acquire_lease(KEYS[0], "w3", 60) is not None  # the one it had taken was given back
    other.release()


def test_a_lease_taken_over_fails_the_check_and_stays_lost(store: SQLiteStore, clock: FakeClock) -> None:
    mine = Leases(store, "w1", 60)
    assert mine.acquire(KEYS)
    mine.check()
    clock.advance(seconds=30)
    mine.renew()
    clock.advance(seconds=45)  # 75 s after taking it, 45 s after the renewal: still held
    mine.check()
    clock.advance(seconds=61)
    with pytest.raises(LeaseLost, match="expired or was taken over"):
        mine.check()
    assert Leases(store, "w2", 60).acquire(KEYS)
    mine.renew()  # too late: someone else has it now
    assert mine.lost is not None
    with pytest.raises(LeaseLost):
        mine.check()


def test_the_check_fails_closed_when_the_store_cannot_answer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    mine = Leases(store, "w1", 60)
    assert mine.acquire(KEYS)
    store.close()
    with pytest.raises(LeaseLost, match="could not check the lease"):
        mine.check()
    mine.release()  # never raises: the lease expires on its own


def test_keep_alive_ticks_in_the_background_until_the_block_ends() -> None:
    ticks: list[str] = []
    enough = threading.Event()

    def tick() -> None:
        ticks.append("renewed")
        if ticks.count("renewed") >= 3 and "other" in ticks:
            enough.set()

    def broken() -> None:
        raise RuntimeError("storage blip")

    with keep_alive(0.01, broken, tick), keep_alive(0.01, lambda: ticks.append("other")):
        assert enough.wait(5)  # a tick that raises does not stop the others; two blocks at once
    seen = len(ticks)
    assert "other" in ticks
    time.sleep(0.05)
    assert len(ticks) == seen  # none after the block ended


def test_a_job_delivery_is_kept_hidden_and_knows_when_it_was_redelivered(store: SQLiteStore,
                                                                         clock: FakeClock) -> None:
    store.enqueue(Job(kind="plan", payload={}))
    job = store.dequeue(visibility_seconds=60)
    assert job is not None
    delivery = JobDelivery(store, job, 60)
    clock.advance(seconds=50)
    delivery.extend()
    clock.advance(seconds=50)  # 100 s: hidden still, by the extension
    assert store.dequeue() is None
    clock.advance(seconds=11)
    again = store.dequeue()  # the worker died: redelivered
    assert again is not None
    delivery.extend()
    assert delivery.lost
    store.complete(again)
