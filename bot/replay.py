"""The replay cache: a validly signed Slack request is accepted once.

Slack signs ``v0:<timestamp>:<body>`` and a receiver accepts a timestamp up to five minutes
away from its clock, so a captured request stays valid for that window: decisions are
idempotent, but ``/remediate pause`` then ``resume`` would toggle again on replay. Slack never
sends the same signature twice (interactivity and slash commands are not redelivered), so a
signature seen before is a replay and is refused.

The cache is the store's lock table, so it holds across Functions instances and processes:
``acquire_lock("slack-replay:<sha256 of the signature>", <a fresh owner>, ttl)`` is atomic with
a time limit on SQLite and on Azure Tables, and a fresh owner per request makes the store's
re-entrancy for the same owner irrelevant. The time limit is how long the signature can still
pass the window (``timestamp + 300 s - now``, at most 600 s for a timestamp five minutes ahead)
plus ``CLOCK_SKEW`` between this host's clock and the store's. No schema change: rows in the
locks table; this instance releases the rows it took once their window has passed (a few per
request), so the table does not grow with every click (rows of an instance that stopped stay as
expired locks, harmless).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from remediator.lifecycle.model import AuditEvent
from remediator.lifecycle.store import Store

log = logging.getLogger("bot.replay")

KEY_PREFIX = "slack-replay:"
WINDOW_SECONDS = 300  # Slack's signature window (and slack_sdk's SignatureVerifier's)
CLOCK_SKEW = 60.0
RELEASE_PER_CALL = 2  # expired rows released per check (bounded work on the request path)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ReplayCache:
    """``first_seen(timestamp, signature)``: True once per signature within its window."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = _utcnow,
                 wall: Callable[[], float] = time.time, window: float = WINDOW_SECONDS,
                 skew: float = CLOCK_SKEW) -> None:
        self.store = store
        self.clock = clock  # the audit trail's clock (the engine's)
        self.wall = wall  # the signature window's clock (the one the timestamp is checked against)
        self.window = window
        self.skew = skew
        self._taken: deque[tuple[float, str, str]] = deque()  # (monotonic expiry, key, owner)
        self._lock = threading.Lock()

    @staticmethod
    def key(signature: str) -> str:
        return KEY_PREFIX + hashlib.sha256(signature.encode("ascii", "replace")).hexdigest()

    def first_seen(self, timestamp: int, signature: str) -> bool:
        """Record the signature; False when it was recorded before and its window has not passed."""
        self._release_expired()
        ttl = max(0.0, timestamp + self.window - self.wall()) + self.skew
        key, owner = self.key(signature), secrets.token_hex(8)
        if not self.store.acquire_lock(key, owner, ttl):
            return False
        with self._lock:
            self._taken.append((time.monotonic() + ttl, key, owner))
        return True

    def refused(self, *, timestamp: int, signature: str, size: int, summary: Mapping[str, Any]) -> None:
        """Audit a refused replay (``slack_replay_refused``): who the signed body names and what it asked."""
        user = str(summary.get("user_id") or "")
        try:
            self.store.audit(AuditEvent(
                remediation_id=None, event="slack_replay_refused", actor=f"slack:{user}" if user else "slack",
                at=self.clock(), detail={"timestamp": timestamp, "bytes": size, **summary,
                                         "signature_sha256": hashlib.sha256(signature.encode()).hexdigest()}))
        except Exception:  # the refusal stands; the log line says what could not be recorded
            log.exception("could not audit a refused Slack replay")

    def _release_expired(self) -> None:
        now = time.monotonic()
        due: list[tuple[str, str]] = []
        with self._lock:
            while self._taken and self._taken[0][0] <= now and len(due) < RELEASE_PER_CALL:
                _, key, owner = self._taken.popleft()
                due.append((key, owner))
        for key, owner in due:
            try:
                self.store.release_lock(key, owner)
            except Exception:  # an expired row left behind is harmless; try no further now
                log.warning("could not release an expired replay-cache row; it stays as an expired lock")
                return
