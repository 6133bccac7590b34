"""``bot.replay.ReplayCache`` on every store (SQLite and Azure Tables on Azurite): a signature is
accepted once within its window, by any instance, also under a race; refusals are audited."""

from __future__ import annotations

import threading
import time

from bot.replay import CLOCK_SKEW, WINDOW_SECONDS, ReplayCache
from tests.store.conftest import Backend

SIGNATURE = "v0=" + "ab" * 32


def test_a_signature_is_accepted_once_by_any_instance(backend: Backend) -> None:
    now = int(time.time())
    first, second = ReplayCache(backend.store, clock=backend.clock), ReplayCache(backend.make(), clock=backend.clock)
    assert first.first_seen(now, SIGNATURE)
    assert not first.first_seen(now, SIGNATURE)
    assert not second.first_seen(now, SIGNATURE)  # another Functions instance, the same store
    assert second.first_seen(now, "v0=" + "cd" * 32)


def test_the_entry_lasts_as_long_as_the_signature_can_pass_the_window(backend: Backend) -> None:
    cache = ReplayCache(backend.store, clock=backend.clock)
    now = int(time.time())
    ahead = now + WINDOW_SECONDS  # a timestamp five minutes ahead passes the window for ten minutes
    assert cache.first_seen(ahead, SIGNATURE)
    backend.clock.advance(2 * WINDOW_SECONDS - 5)
    assert not cache.first_seen(ahead, SIGNATURE)
    backend.clock.advance(5 + CLOCK_SKEW + 5)  # by now the signature fails the window check anyway
    assert cache.first_seen(ahead, SIGNATURE)


def test_racing_replays_let_exactly_one_through(backend: Backend) -> None:
    caches = [ReplayCache(backend.make(), clock=backend.clock) for _ in range(4)]
    now = int(time.time())
    results: list[bool] = []
    lock = threading.Lock()
    gate = threading.Barrier(12)

    def attempt(i: int) -> None:
        gate.wait()
        got = caches[i % len(caches)].first_seen(now, SIGNATURE)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 11 + [True]


def test_a_refused_replay_is_audited(backend: Backend) -> None:
    cache = ReplayCache(backend.store, clock=backend.clock)
    cache.refused(timestamp=1_700_000_000, signature=SIGNATURE, size=321,
                  summary={"kind": "command", "user_id": "U0ADMIN0001", "command": "/remediate", "text": "pause"})
    (event,) = [e for e in backend.store.audit_log() if e.event == "slack_replay_refused"]
    assert event.actor == "slack:U0ADMIN0001"
    assert event.remediation_id is None
    assert dict(event.detail) == {"timestamp": 1_700_000_000, "bytes": 321, "kind": "command", "user_id": "U0ADMIN0001",
                                  "command": "/remediate", "text": "pause",
                                  "signature_sha256": ReplayCache.key(SIGNATURE).split(":", 1)[1]}
