"""Posting approval messages: at most one live message per remediation, and an outage only delays it.

A request is ``announced`` only once the chat confirmed its message (the ref is stored with it).
Until then it stays in the store's ``unannounced`` list, and the announce job (which the sweep
queues again while any request waits) keeps offering it to ``post`` / ``post_digest`` jobs, for
as long as it is pending: an expired, approved or withdrawn request is not posted.

Each attempt is recorded on the remediation *before* the chat is called (``Remediation.posting``,
a compare-and-set, so of two workers only one attempts at a time): the message's tag
(``request:<remediation id>``, or ``digest:<id>`` for a storm's digest), when, how many attempts,
and ``retry_at``. Then:

* the chat confirms: the ref is stored, ``announced`` set, ``posting`` cleared;
* the chat answers no (``ChatError``, not ``maybe_done``): ``outcome`` ``failed``; a transient
  answer re-queues the job after a backoff (``RETRY_INITIAL`` doubling to ``RETRY_CAP``), anything
  else is left to the sweep's next announce (the same backoff applies);
* the outcome is unknown (a timeout, a 5xx, a crash after the call): ``outcome`` ``unknown`` (or a
  ``pending`` attempt whose worker is gone). Nothing is posted again before ``SETTLE`` has passed
  (the chat may still be finishing the call) and the chat's ``find_posted`` has looked for the tag
  (Slack: the channel's recent history, by message metadata). Found: that message is kept. Not
  found: a new attempt. The look-up itself fails (Slack down, or the history not readable, e.g. the
  app lacks ``channels:history``): **nothing is posted**: at most one message wins over at least
  one. The audit says the outcome is unknown (``post_outcome_unknown``, once per attempt) and the
  next look-up is after the backoff; a request that can never be decided stays unannounced,
  listed, until it expires (its ``expired`` record carries the last error).

The audit trail records the first failure of an attempt series (``post_delayed``), an unknown
outcome, and a message found by look-up (``post_found``); the posts themselves are visible as
the stored ref.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from remediator.lifecycle.chat import ChatError, MessageRef, MessageTag
from remediator.lifecycle.jobs import PostDigestJob, PostJob
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.runtime import CAS_RETRIES, Runtime

log = logging.getLogger("remediator.posting")

__all__ = ["RETRY_CAP", "RETRY_INITIAL", "SETTLE", "Poster", "backoff"]

SETTLE = timedelta(seconds=90)  # a call may still land this long after it started (Slack client timeout 30 s)
RETRY_INITIAL = 5.0  # seconds before the first retry; doubled per attempt
RETRY_CAP = 300.0  # at most this long between attempts
DUE_SKEW = timedelta(seconds=1)  # a retry this close to due counts as due (queue and clock may differ a little)


def backoff(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: ``RETRY_INITIAL`` doubling per attempt, capped at ``RETRY_CAP``."""
    return float(min(RETRY_CAP, RETRY_INITIAL * 2.0 ** max(attempts - 1, 0)))


def _iso(value: datetime) -> str:
    return value.isoformat()


def _when(posting: Mapping[str, Any], key: str) -> datetime | None:
    text = posting.get(key)
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _tag(label: str) -> MessageTag:
    """``request:<remediation id>`` or ``digest:<digest id>`` as a ``MessageTag``."""
    kind, _, key = label.partition(":")
    return MessageTag(kind="digest" if kind == "digest" else "request", key=key)


class Poster:
    """The ``post`` and ``post_digest`` jobs (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def post(self, job: PostJob) -> None:
        rt = self.rt
        if rt.chat is None:
            return
        chat = rt.chat
        self._deliver(f"request:{job.remediation_id}", [job.remediation_id], job,
                      lambda rems: chat.post_approval(rems[0]), digest=False)

    def post_digest(self, job: PostDigestJob) -> None:
        rt = self.rt
        if rt.chat is None:
            return
        chat = rt.chat
        # a job queued by an earlier version has no id: one derived from its members is as stable
        digest_id = job.digest_id or hashlib.sha256(",".join(job.remediation_ids).encode()).hexdigest()[:22]

        def send(rems: list[Remediation]) -> MessageRef:
            return chat.post_digest(rems, playbook=job.playbook, group=job.group, digest_id=digest_id)

        self._deliver(f"digest:{digest_id}", job.remediation_ids, job, send, digest=True)

    # -- the attempt ------------------------------------------------------------------------------
    def _deliver(self, label: str, remediation_ids: Sequence[str], job: PostJob | PostDigestJob,
                 send: Callable[[list[Remediation]], MessageRef], *, digest: bool) -> None:
        rt = self.rt
        now = rt.clock()
        waiting = [r for r in (rt.store.get(i) for i in dict.fromkeys(remediation_ids))
                   if r is not None and r.state == "pending_approval" and not r.announced]
        free: list[Remediation] = []
        undecided = False
        in_flight: list[datetime] = []
        unresolved: dict[str, list[Remediation]] = {}
        for rem in waiting:
            posting = rem.posting
            if not posting:
                free.append(rem)
                continue
            retry_at = _when(posting, "retry_at")
            if retry_at is not None and retry_at - DUE_SKEW > now:
                if posting.get("outcome") == "pending":  # in flight: come back when it has settled, in case
                    in_flight.append(retry_at)          # its worker dies before it can say how it went
                continue  # a retry is scheduled: its own job (or the sweep's announce) comes back
            if posting.get("outcome") == "failed":
                free.append(rem)
            else:  # pending or unknown, and settled: did it land?
                unresolved.setdefault(str(posting.get("tag") or f"request:{rem.id}"), []).append(rem)
        for tag_label, rems in unresolved.items():
            decided = self._resolve(tag_label, rems, now)
            if decided is None:
                undecided = True
            else:
                free.extend(decided)
        claimed = self._claim(free, label, now) if free else []
        requeued = self._attempt(label, claimed, job, send, digest=digest) if claimed else False
        if in_flight and not requeued:
            rt.enqueue(job, delay=(max(in_flight) - now).total_seconds() + DUE_SKEW.total_seconds())
            requeued = True
        if undecided and not requeued:
            rt.enqueue(job, delay=backoff(max(int(r.posting.get("lookups") or 0) + 1
                                               for rems in unresolved.values() for r in rems)))

    def _resolve(self, label: str, rems: list[Remediation], now: datetime) -> list[Remediation] | None:
        """Look for the message of an attempt whose outcome is unknown: found, keep it (and answer
        []); not found, the remediations are free for a new attempt; the chat cannot tell, None
        (their next look-up is after the backoff; nothing is posted)."""
        rt = self.rt
        assert rt.chat is not None
        first = min((_when(r.posting, "first") or now for r in rems), default=now)
        try:
            ref = rt.chat.find_posted(_tag(label), since=first)
        except ChatError as e:
            for rem in rems:
                attempts = int(rem.posting.get("attempts") or 1)
                lookups = int(rem.posting.get("lookups") or 0) + 1  # the look-ups back off like the posts
                if rem.posting.get("lookup_error") != e.what:
                    rt.audit(rem.id, "post_outcome_unknown", "worker", tag=label, attempts=attempts, error=e.what,
                             reason="the last post's outcome is unknown and the chat cannot tell whether it landed; "
                                    "not posting again until a look-up can decide")
                rt.set_fields(rem, posting={**rem.posting, "outcome": "unknown", "lookup_error": e.what,
                                            "lookups": lookups,
                                            "retry_at": _iso(now + timedelta(seconds=backoff(lookups)))},
                              updated_at=rem.updated_at)
            log.warning("cannot tell whether %s was posted: %s", label, e.what)
            return None
        if ref is None:
            return rems
        for rem in rems:
            self._store_ref(rem, ref, digest=label.startswith("digest:"))
            rt.audit(rem.id, "post_found", "worker", tag=label, channel=ref.channel, ts=ref.ts,
                     attempts=int(rem.posting.get("attempts") or 1),
                     reason="the earlier post landed although its answer was lost; kept, not posted again")
        return []

    def _claim(self, rems: list[Remediation], label: str, now: datetime) -> list[Remediation]:
        """Record this attempt on each (compare-and-set); the ones this worker holds now."""
        rt = self.rt
        out: list[Remediation] = []
        for rem in rems:
            current: Remediation | None = rem
            seen = dict(rem.posting)
            for _ in range(CAS_RETRIES):
                if current is None or current.state != "pending_approval" or current.announced \
                        or dict(current.posting) != seen:
                    break  # taken meanwhile (another worker's attempt, or posted)
                posting = {"tag": label, "first": seen.get("first") or _iso(now), "at": _iso(now),
                           "attempts": int(seen.get("attempts") or 0) + 1, "outcome": "pending",
                           "retry_at": _iso(now + SETTLE)}
                if seen.get("error"):
                    posting["error"] = seen["error"]
                new = rt.store.update(current, posting=posting, updated_at=current.updated_at)
                if new is not None:
                    out.append(new)
                    break
                current = rt.store.get(rem.id)
        return out

    def _attempt(self, label: str, claimed: list[Remediation], job: PostJob | PostDigestJob,
                 send: Callable[[list[Remediation]], MessageRef], *, digest: bool) -> bool:
        """Post for ``claimed``; whether the job was queued again (a transient failure)."""
        rt = self.rt
        try:
            ref = send(claimed)
        except ChatError as e:
            now = rt.clock()
            attempts = max(int(r.posting.get("attempts") or 1) for r in claimed)
            wait = backoff(attempts)
            if e.maybe_done:
                wait = max(wait, SETTLE.total_seconds())
            for rem in claimed:
                if not rem.posting.get("error"):
                    rt.audit(rem.id, "post_delayed", "worker", tag=label, error=e.what,
                             reason="the chat did not take the message; trying again with backoff while the request "
                                    "is pending")
                rt.set_fields(rem, posting={**rem.posting, "outcome": "unknown" if e.maybe_done else "failed",
                                            "error": e.what, "retry_at": _iso(now + timedelta(seconds=wait))},
                              updated_at=rem.updated_at)
            log.warning("%s of %d request(s) not posted (attempt %d): %s; again in %.0fs", label, len(claimed),
                        attempts, e.what, wait)
            if e.transient:
                rt.enqueue(job, delay=wait)
            return e.transient
        for rem in claimed:
            self._store_ref(rem, ref, digest=digest)
        return False

    def _store_ref(self, rem: Remediation, ref: MessageRef, *, digest: bool) -> None:
        message = {"channel": ref.channel, "ts": ref.ts}
        if digest:
            message["digest"] = "1"  # the message is shared by the storm's remediations
        self.rt.set_fields(rem, message=message, announced=True, posting={})
