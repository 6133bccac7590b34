"""Fencing, not hope: leases a worker renews while it works, checked right before every write.

``Leases`` holds the leases of one job on a set of keys (``Store.acquire_lease``: in sorted order,
all or none), each with its fencing token. ``renew`` extends them (``Store.renew_lease``); once one
renewal fails the leases are lost for good. ``check`` is the fencing check: every lease still held
with its token and not expired (``Store.check_lease``), else ``LeaseLost`` (also when the store
cannot answer: the check fails closed). The applier installs it with
``remediator.azure.fence.fenced``, so it runs immediately before every ARM write.

``keep_alive(every, *ticks)`` runs the renewals in the background: the process's one renewer thread
calls each tick every ``every`` seconds (the lease ttl / 3) until the block ends; a tick that raises
is logged and tried again at the next turn (a storage blip delays a renewal; the check decides whether the
lease still holds). ``JobDelivery`` is such a tick for the queue: it keeps a long job's message
hidden (``Store.extend``) and holds the latest receipt to complete it with.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from remediator.azure.fence import LeaseLost
from remediator.errors import error_line
from remediator.lifecycle.model import Job
from remediator.lifecycle.store import Store

log = logging.getLogger("remediator.worker")

__all__ = ["JobDelivery", "LeaseLost", "Leases", "keep_alive"]


class Leases:
    """The leases one owner holds on ``keys``, with their fencing tokens (see the module docstring)."""

    def __init__(self, store: Store, owner: str, ttl_seconds: float) -> None:
        self.store = store
        self.owner = owner
        self.ttl = ttl_seconds
        self.tokens: dict[str, int] = {}
        self._lost: str | None = None
        self._lock = threading.Lock()

    def acquire(self, keys: Sequence[str]) -> bool:
        """Take every key (sorted: two jobs never wait on each other crosswise); False, holding none,
        when one is held by someone else."""
        for key in sorted(set(keys)):
            token = self.store.acquire_lease(key, self.owner, self.ttl)
            if token is None:
                self.release()
                return False
            self.tokens[key] = token
        return True

    def renew(self) -> None:
        """Extend every lease by the ttl from now; a lease someone else took marks them lost."""
        with self._lock:
            if self._lost is not None:
                return
            for key, token in self.tokens.items():
                if not self.store.renew_lease(key, self.owner, token, self.ttl):
                    self._lost = f"the lease on {key} was taken over (token {token} is no longer current)"
                    log.error("%s lost: %s", self.owner, self._lost)
                    return

    def check(self) -> None:
        """The fencing check: ``LeaseLost`` unless every lease is still held with its token."""
        if self._lost is not None:
            raise LeaseLost(self._lost)
        for key, token in self.tokens.items():
            try:
                held = self.store.check_lease(key, self.owner, token)
            except Exception as e:  # fail closed: an unanswered check is not a lease
                raise LeaseLost(f"could not check the lease on {key}: {error_line(e)}") from e
            if not held:
                with self._lock:
                    self._lost = self._lost or f"the lease on {key} expired or was taken over (token {token})"
                raise LeaseLost(self._lost)

    @property
    def lost(self) -> str | None:
        return self._lost

    def release(self) -> None:
        """Free what is held (never raises: an unreleased lease expires after its ttl)."""
        for key in list(self.tokens):
            try:
                self.store.release_lock(key, self.owner)
            except Exception:
                log.exception("could not release %s (it expires on its own)", key)
        self.tokens.clear()


class JobDelivery:
    """A dequeued job kept hidden while it runs: ``extend`` moves its visibility on (a tick for
    ``keep_alive``); ``job`` is the delivery with its latest receipt (complete with it)."""

    def __init__(self, store: Store, job: Job, visibility_seconds: float) -> None:
        self.store = store
        self.job = job
        self.visibility = visibility_seconds
        self.lost = False

    def extend(self) -> None:
        if self.lost:
            return
        extended = self.store.extend(self.job, self.visibility)
        if extended is None:
            self.lost = True  # redelivered to someone else: the leases keep the two apart
            log.warning("job %s (%s) outlived its delivery: it was redelivered", self.job.id, self.job.kind)
            return
        self.job = extended


class _Entry:
    """One ``keep_alive`` block: its ticks, its period, and a lock held while they run."""

    def __init__(self, every: float, ticks: tuple[Callable[[], None], ...]) -> None:
        self.every = every
        self.ticks = ticks
        self.active = True
        self.lock = threading.Lock()

    def run(self) -> bool:
        """Run the ticks once (unless the block ended); whether to run them again."""
        with self.lock:
            if not self.active:
                return False
            for tick in self.ticks:
                try:
                    tick()
                except Exception as e:
                    log.warning("renewal failed (tried again in %.0f s): %s", self.every, error_line(e))
            return self.active


class _Ticker:
    """One daemon thread per process running every live ``keep_alive`` block's ticks when due (a
    thread per job cost ~0.3 ms a job; this is a heap push). Started on first use, and again in a
    child after ``fork``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, entry: _Entry) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + entry.every, next(self._seq), entry))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="remediator-renewer", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and not self._heap[0][2].active:
                        heapq.heappop(self._heap)  # ended blocks leave without waiting for their turn
                    if not self._heap:
                        self._cond.wait()
                        continue
                    due, _, entry = self._heap[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        break
                    self._cond.wait(wait)
            if entry.run():
                with self._cond:
                    heapq.heappush(self._heap, (time.monotonic() + entry.every, next(self._seq), entry))

    def after_fork(self) -> None:
        self._cond = threading.Condition()
        self._heap = []
        self._thread = None


_TICKER = _Ticker()
os.register_at_fork(after_in_child=_TICKER.after_fork)


@contextlib.contextmanager
def keep_alive(every: float, *ticks: Callable[[], None]) -> Iterator[None]:
    """Call each of ``ticks`` every ``every`` seconds in the background while the block runs (on the
    process's one renewer thread); when the block ends, a tick under way is waited for and no other
    starts."""
    entry = _Entry(every, ticks)
    _TICKER.add(entry)
    try:
        yield
    finally:
        with entry.lock:
            entry.active = False
