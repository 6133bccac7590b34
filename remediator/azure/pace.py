"""ARM's pace: bounded concurrency per subscription, its rate-limit headers, and 429 for the whole subscription.

ARM throttles per subscription (and Resource Graph per caller), and says so in every answer:
``x-ms-ratelimit-remaining-subscription-reads`` / ``-writes`` (what is left of the budget),
``Retry-After`` on a 429, and for Resource Graph ``x-ms-user-quota-remaining`` /
``x-ms-user-quota-resets-after`` (``hh:mm:ss``). azure-core's ``RetryPolicy`` retries a 429 after
its ``Retry-After``, but per call: twenty threads writing to one throttled subscription would each
wait and retry on their own, and each new call would still go out and be throttled again.

``Pace`` is shared by every client of one subscription (``ArmClients`` keeps one per subscription,
and one for Resource Graph), and ``PacePolicy`` is its azure-core policy, placed after the retry
policy so that it sees every attempt:

* at most ``concurrency`` requests of the subscription are in flight at once (a semaphore);
* a 429 blocks the **whole subscription** until its ``Retry-After`` (or the quota's reset) has
  passed: every request of that subscription, from any thread or client, waits before it goes
  out; the throttled request itself is then sent again (up to ``max_retries`` 429s in a row, after
  which the 429 goes to the caller, which fails loudly). A request ARM answered 429 was not
  processed, so sending it again cannot apply anything twice;
* when a remaining budget falls below ``low_water`` the subscription pauses ``low_water_pause``
  seconds before the next request, instead of running into the 429;
* ``stats()`` reports what happened (requests, 429s, seconds blocked), for the benchmarks.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

DEFAULT_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 8
DEFAULT_RETRY_AFTER = 5.0  # a 429 without a Retry-After
MAX_WAIT = 300.0  # a Retry-After beyond this is capped (and still honoured at that length)
LOW_WATER = 5
LOW_WATER_PAUSE = 1.0
_BUDGET_HEADERS = ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-subscription-writes",
                   "x-ms-user-quota-remaining")


def retry_after(headers: Any, *, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date) or ``x-ms-user-quota-resets-after``."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value:
        try:
            return min(max(float(value), 0.0), MAX_WAIT)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), MAX_WAIT)
    resets = headers.get("x-ms-user-quota-resets-after")
    if resets:
        parts = resets.split(":")
        try:
            h, m, s = (float(p) for p in parts) if len(parts) == 3 else (0.0, 0.0, float(parts[-1]))
            return min(h * 3600 + m * 60 + s, MAX_WAIT)
        except ValueError:
            pass
    return default


class Pace:
    """The shared state of one subscription (or of Resource Graph); see the module docstring."""

    def __init__(self, name: str, *, concurrency: int = DEFAULT_CONCURRENCY, max_retries: int = DEFAULT_MAX_RETRIES,
                 low_water: int = LOW_WATER, low_water_pause: float = LOW_WATER_PAUSE,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if concurrency < 1 or max_retries < 0:
            raise ValueError("concurrency must be at least 1 and max_retries at least 0")
        self.name = name
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.low_water = low_water
        self.low_water_pause = low_water_pause
        self._clock = clock
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self.remaining: dict[str, int] = {}
        self._stats = {"requests": 0, "throttled": 0, "backoffs": 0, "blocked_seconds": 0.0}

    def wait(self) -> None:
        """Sleep until the subscription is no longer blocked."""
        while True:
            with self._lock:
                delay = self._blocked_until - self._clock()
            if delay <= 0:
                return
            self._sleep(delay)

    def block(self, seconds: float) -> None:
        """Nothing of this subscription goes out for ``seconds`` from now (an earlier, longer block stays)."""
        with self._lock:
            now = self._clock()
            until = now + seconds
            if until > self._blocked_until:
                self._stats["blocked_seconds"] += until - max(now, self._blocked_until)
                self._blocked_until = until
                self._stats["backoffs"] += 1

    def observe(self, status: int, headers: Any) -> float | None:
        """Note an answer; the seconds the subscription must now wait (None: go on)."""
        with self._lock:
            self._stats["requests"] += 1
            if status == 429:
                self._stats["throttled"] += 1
        if status == 429:
            return retry_after(headers)
        low = None
        for name in _BUDGET_HEADERS:
            value = headers.get(name)
            if value is None:
                continue
            try:
                left = int(value)
            except ValueError:
                continue
            with self._lock:
                self.remaining[name] = left
            if left < self.low_water:
                low = retry_after(headers, default=self.low_water_pause) if name == "x-ms-user-quota-remaining" \
                    else self.low_water_pause
        if low is not None:
            self.block(low)
        return None

    def stats(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stats)

    def send(self, send: Callable[[], PipelineResponse[Any, Any]]) -> PipelineResponse[Any, Any]:
        """``send`` under the subscription's limits, sending it again after each 429 (up to ``max_retries``)."""
        attempt = 0
        while True:
            self.wait()
            with self._slots:
                self.wait()  # a block that began while this request queued for a slot
                response = send()
            http = response.http_response
            delay = self.observe(http.status_code, http.headers)
            if delay is None or attempt >= self.max_retries:
                return response
            attempt += 1
            self.block(delay)


class PacePolicy(HTTPPolicy[Any, Any]):
    """The azure-core policy of a ``Pace`` (after the retry policy: it sees every attempt)."""

    def __init__(self, pace: Pace) -> None:
        super().__init__()
        self.pace = pace

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        return self.pace.send(lambda: self.next.send(request))
