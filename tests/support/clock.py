"""Virtual monotonic time for tests that would otherwise wait: a 429's ``Retry-After``, a quota window.

``VirtualTime`` is a monotonic clock that moves only when something sleeps on it: ``sleep(s)``
returns at once and moves the clock ``s`` seconds on. Hand the same object to everything that
keeps time in the test (``FakeArm(clock=vt.monotonic)`` for its throttle windows and quotas,
``arm.clients(clock=vt.monotonic, sleep=vt.sleep)`` for the paces), so that the wait is honoured
on the clock and costs no wall time. Threads share it: each one's sleep moves the clock for all
(time passes at least as fast as it would, never backwards).
"""

from __future__ import annotations

import threading


class VirtualTime:
    """A monotonic clock that a ``sleep`` moves on instead of waiting; thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []  # every sleep asked for, in order

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")  # as time.sleep
        with self._lock:
            self._now += seconds
            self.slept.append(seconds)

    @property
    def total_slept(self) -> float:
        with self._lock:
            return sum(self.slept)
