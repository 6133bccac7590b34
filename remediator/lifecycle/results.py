"""Results of remediations that have no approval message of their own, told as digests.

A remediation applied on its own (its playbook's approval is ``auto``) has no approval message to
reply under; one approved with the others of an approval digest (a storm, a backlog) shares its
message with them, and a thread reply per member would take a posting second each. Their results
("applied and verified", "failed: …", "rolled back") are not posted as a message each: the results
of one playbook are listed in a **results digest**, one message that names each result's resource,
says what happened, offers Undo where it can, and is updated in place
(``chat.update``) as more results arrive within ``Settings.result_window`` (15 minutes by default)
of its first. A message that holds ``ENTRIES_MAX`` results (the renderer keeps that many within
Slack's 50 blocks and 3,000 characters per section) or whose window is over is left as it is; the
next result starts a new one. A channel flooded by 200 "applied" messages is noise, and every post
takes one of the channel's one-per-second slots that all workers share (``bot.chat.SharedPacer``),
while an update takes none. ``result_window`` 0 turns digests off (a message per result, as before).

The state of a playbook's digest is one shared flag (``results:<playbook>``, JSON), read and written
only under the playbook's lock (``Store.acquire_lock``), held for store calls only, never across a
chat call:

* ``add`` (the ``reply`` job of a remediation without a thread): the result joins ``pending``,
  unless it is there already, in the open message, or audited as posted (the same reply job
  delivered twice lists it once), and a ``results`` job is queued, before the state is written (a
  waiting result always has a job that will show it), unless one is due soon; a job runs at most
  every ``FLUSH_GAP`` per digest, so a burst of results is one update, not one each;
* ``flush`` (the ``results`` job): the open message's chat call first (one at a time per digest:
  ``call``, recorded before the call, is in flight until ``SETTLE`` has passed); then the
  pending results move into the open message (or a new one, full or past its window, once the
  open one shows everything), and the chat is called outside the lock: a new message is posted,
  tagged ``MessageTag(kind="results", key=<digest id>)``; a posted one is updated with the whole
  list (idempotent). Once the chat confirmed, each result it showed for the first time is audited
  ``result_posted`` on its remediation (digest id, channel, ts), once: a record already there is
  not written again; then the state records how many the message shows.

Faults: a post whose answer was lost (a timeout, a 5xx, a crash after the call) is not posted again
before ``SETTLE`` has passed and ``find_posted`` has looked for the digest's tag in the channel
(Slack's message metadata): found, it is kept; not found, posted; the look-up fails, nothing is
posted and it is tried again after a backoff. A chat outage re-queues the job with backoff
(``posting.backoff``, for as long as it lasts): results wait in the state, never dropped. An update
whose answer was lost is simply made again. A ``results`` job given up as poison is queued again
``RETRY_CAP`` later. A state that cannot be read is set aside (logged, audited ``results_reset``)
and the digest starts afresh: a result it held may then be missing from Slack, never shown twice.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from remediator.lifecycle.chat import (
    ChatError,
    MessageRef,
    MessageTag,
    ResultDigest,
    ResultEntry,
    ResultKind,
    reply_key,
)
from remediator.lifecycle.jobs import RESULT_KINDS, ReplyJob, ResultsJob
from remediator.lifecycle.model import Remediation
from remediator.lifecycle.posting import RETRY_CAP, SETTLE, backoff
from remediator.lifecycle.runtime import Runtime

log = logging.getLogger("remediator.results")

__all__ = ["ENTRIES_MAX", "FLUSH_GAP", "TEXT_MAX", "ResultDigests"]

ENTRIES_MAX = 25  # results per digest message (bot.blocks.results_message fits them in Slack's limits)
TEXT_MAX = 1000  # characters of a result's text kept in the digest (the audit trail keeps all of it)
STATE_MAX = 24_000  # characters of a digest's state (a Table Storage string property holds 32K)
FLUSH_GAP = timedelta(seconds=2)  # at least this between two chat calls of one digest (chat.update: Tier 3)
UPDATE_SETTLE = timedelta(seconds=60)  # an update in flight this long is taken for lost and made again
LOCK_TTL = 30.0  # seconds the state's lock is held at most (store calls only)
LOCK_TRIES = 40  # tries to take the lock (LOCK_WAIT apart) before the job is queued again
LOCK_WAIT = 0.05
PREFIX = "results:"
EVENT = "result_posted"


def _iso(value: datetime) -> str:
    return value.isoformat()


def _when(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


@dataclass
class _Message:
    """The open digest message: its results, how many Slack shows (``shown``), the chat call in flight."""

    id: str
    opened: datetime
    entries: list[dict[str, Any]] = field(default_factory=list)
    channel: str = ""
    ts: str = ""
    shown: int = 0
    call: dict[str, Any] = field(default_factory=dict)  # op, count, first, at, until, outcome, attempts, …

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "opened": _iso(self.opened), "entries": self.entries, "channel": self.channel,
                "ts": self.ts, "shown": self.shown, "call": self.call}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> _Message:
        opened = _when(doc.get("opened"))
        if not doc.get("id") or opened is None or not isinstance(doc.get("entries"), list):
            raise ValueError("an open message needs id, opened and entries")
        return cls(id=str(doc["id"]), opened=opened, entries=[dict(e) for e in doc["entries"]],
                   channel=str(doc.get("channel") or ""), ts=str(doc.get("ts") or ""),
                   shown=int(doc.get("shown") or 0), call=dict(doc.get("call") or {}))


@dataclass
class _State:
    pending: list[dict[str, Any]] = field(default_factory=list)
    open: _Message | None = None
    flush_at: datetime | None = None  # when the queued results job is due
    last_call: datetime | None = None

    def to_json(self) -> str:
        return json.dumps({"v": 1, "pending": self.pending, "open": self.open.to_json() if self.open else None,
                           "flush_at": _iso(self.flush_at) if self.flush_at else None,
                           "last_call": _iso(self.last_call) if self.last_call else None})

    @classmethod
    def from_json(cls, raw: str) -> _State:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("pending"), list):
            raise ValueError("not a results digest state")
        return cls(pending=[dict(e) for e in doc["pending"]],
                   open=_Message.from_json(doc["open"]) if doc.get("open") else None,
                   flush_at=_when(doc.get("flush_at")), last_call=_when(doc.get("last_call")))

    def result_keys(self) -> set[str]:
        return {str(e.get("k")) for e in [*self.pending, *(self.open.entries if self.open else [])]}


def _entry(entry: Mapping[str, Any]) -> ResultEntry:
    kind = str(entry.get("kind") or "info")
    return ResultEntry(remediation_id=str(entry.get("r") or ""), resource_id=str(entry.get("res") or ""),
                       kind=cast(ResultKind, kind if kind in RESULT_KINDS else "info"),
                       text=str(entry.get("text") or ""), undo_available=bool(entry.get("undo")))


class ResultDigests:
    """``add`` and ``flush`` of results digests (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def enabled(self) -> bool:
        return self.rt.chat is not None and self.rt.settings.result_window.total_seconds() > 0

    # -- the state, under its lock ------------------------------------------------------------------
    @contextmanager
    def _locked(self, playbook: str) -> Iterator[_State | None]:
        """The playbook's state under its lock (None: the lock could not be taken in time)."""
        store = self.rt.store
        key, owner = PREFIX + playbook, f"results-{uuid.uuid4().hex}"
        for _ in range(LOCK_TRIES):
            if store.acquire_lock(key, owner, LOCK_TTL):
                break
            time.sleep(LOCK_WAIT)
        else:
            yield None
            return
        try:
            yield self._read(playbook)
        finally:
            store.release_lock(key, owner)

    def _read(self, playbook: str) -> _State:
        raw = self.rt.store.get_flag(PREFIX + playbook)
        if not raw:
            return _State()
        try:
            return _State.from_json(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            log.error("results digest state of %s cannot be read (%s); starting afresh", playbook, e)
            self.rt.audit(None, "results_reset", "worker", playbook=playbook, error=str(e)[:200], raw=raw[:500],
                          reason="the results digest's state could not be read; a new digest starts")
            return _State()

    def _write(self, playbook: str, state: _State) -> None:
        self.rt.store.set_flag(PREFIX + playbook, state.to_json())

    # -- add: a result joins the digest -------------------------------------------------------------
    def add(self, rem: Remediation, job: ReplyJob) -> None:
        """Queue ``job``'s result (a remediation with no approval message) into its playbook's digest."""
        rt = self.rt
        key = reply_key(rem.id, job.kind, job.text)
        if self._audited(rem.id, key):
            return  # shown already (this job was delivered again)
        entry = {"r": rem.id, "k": key, "kind": job.kind, "text": job.text[:TEXT_MAX], "undo": job.undo_available,
                 "res": rem.resource_id}
        with self._locked(rem.playbook) as state:
            if state is None:
                rt.enqueue(job, delay=1.0)  # the lock is busy for long: try again shortly
                return
            if key in state.result_keys():
                return
            if state.pending and len(state.to_json()) + len(json.dumps(entry)) > STATE_MAX:
                rt.enqueue(job, delay=backoff(job.attempts + 1))  # the digest is full until it is shown: wait
                return
            state.pending.append(entry)
            self._schedule(rem.playbook, state)
            self._write(rem.playbook, state)

    def _schedule(self, playbook: str, state: _State, *, delay: float | None = None) -> None:
        """Queue a ``results`` job unless one is due soon (the caller writes the state after)."""
        now = self.rt.clock()
        if delay is None:
            if state.flush_at is not None and now - SETTLE < state.flush_at:
                return  # a job is queued (or running): it shows this one too
            earliest = state.last_call + FLUSH_GAP if state.last_call else now
            delay = max((earliest - now).total_seconds(), 0.0)
        self.rt.enqueue(ResultsJob(playbook=playbook), delay=delay)
        state.flush_at = now + timedelta(seconds=delay)

    def _audited(self, remediation_id: str, key: str) -> bool:
        return any(e.event == EVENT and e.detail.get("key") == key for e in self.rt.store.audit_log(remediation_id))

    # -- flush: show what waits ---------------------------------------------------------------------
    def flush(self, job: ResultsJob) -> None:
        """Settle the open message's chat call, move waiting results into it (or a new message) and
        call the chat; queued again while something is left to do."""
        rt = self.rt
        if rt.chat is None:
            return
        playbook = job.playbook
        with self._locked(playbook) as state:
            if state is None:
                rt.enqueue(job, delay=1.0)
                return
            step = self._next(playbook, state)
            state.flush_at = None if step is None else state.flush_at
            self._write(playbook, state)
        if step is None:
            return
        op, msg = step
        if op == "wait":
            return
        self._call(playbook, op, msg, job)

    def _next(self, playbook: str, state: _State) -> tuple[str, _Message] | None:
        """Under the lock: what to do now (``post``, ``update``, ``lookup``, ``wait``), the call recorded
        in the state before it is made; None: nothing to do."""
        now = self.rt.clock()
        msg = state.open
        if msg is not None and msg.call:
            until = _when(msg.call.get("until")) or now
            if until > now:  # a call in flight (or its retry not due yet): come back then
                self._schedule(playbook, state, delay=(until - now).total_seconds() + 0.5)
                return "wait", msg
            if msg.call.get("op") == "post" and msg.call.get("outcome") != "failed":
                return self._record(msg, "lookup", now), msg  # did the post whose answer was lost land?
            msg.call = {k: v for k, v in msg.call.items() if k in ("first", "attempts", "error")}
        settled = msg is None or (bool(msg.ts) and msg.shown >= len(msg.entries))
        if settled and not state.pending:
            return None
        if msg is None or (settled and (len(msg.entries) >= ENTRIES_MAX
                                        or now - msg.opened >= self.rt.settings.result_window)):
            msg = _Message(id=secrets.token_urlsafe(12), opened=now)  # full or past its window: a new message
            state.open = msg
        if not msg.ts or now - msg.opened < self.rt.settings.result_window:
            room = max(ENTRIES_MAX - len(msg.entries), 0)
            msg.entries.extend(state.pending[:room])
            state.pending = state.pending[room:]
        return self._record(msg, "update" if msg.ts else "post", now), msg

    def _record(self, msg: _Message, op: str, now: datetime) -> str:
        """Record the call about to be made (so no other worker makes one meanwhile)."""
        settle = SETTLE if op in ("post", "lookup") else UPDATE_SETTLE
        previous = msg.call
        msg.call = {"op": "post" if op == "lookup" else op, "count": len(msg.entries),
                    "first": previous.get("first") or _iso(now), "at": _iso(now),
                    "attempts": int(previous.get("attempts") or 0) + (op != "lookup"),
                    "until": _iso(now + settle), "outcome": "pending"}
        if previous.get("error"):
            msg.call["error"] = previous["error"]
        if op == "lookup":
            msg.call["lookups"] = int(previous.get("lookups") or 0) + 1
        return op

    def _digest(self, playbook: str, msg: _Message, count: int) -> ResultDigest:
        return ResultDigest(id=msg.id, playbook=playbook, opened_at=msg.opened,
                            entries=tuple(_entry(e) for e in msg.entries[:count]))

    def _call(self, playbook: str, op: str, msg: _Message, job: ResultsJob) -> None:
        """Make the call recorded in ``msg.call`` (outside the lock), then record its outcome."""
        rt = self.rt
        assert rt.chat is not None
        count = int(msg.call.get("count") or len(msg.entries))
        digest = self._digest(playbook, msg, count)
        found = False
        ref: MessageRef | None = None
        if op == "lookup":
            try:
                since = _when(msg.call.get("first")) or msg.opened
                ref = rt.chat.find_posted(MessageTag(kind="results", key=msg.id), since=since)
            except ChatError as e:
                self._failed(playbook, msg, job, e, outcome="unknown")  # still unknown: nothing is posted
                return
            found = ref is not None
        try:
            if ref is None and op in ("post", "lookup"):
                ref = rt.chat.post_results(digest)
            elif ref is None:
                ref = MessageRef(channel=msg.channel, ts=msg.ts)
                rt.chat.update_results(ref, digest)
        except ChatError as e:
            unknown = e.maybe_done and op != "update"
            self._failed(playbook, msg, job, e, outcome="unknown" if unknown else "failed")
            return
        for entry in msg.entries[msg.shown:count]:
            rid, key = str(entry.get("r")), str(entry.get("k"))
            if not self._audited(rid, key):
                rt.audit(rid, EVENT, "worker", digest=msg.id, channel=ref.channel, ts=ref.ts, kind=entry.get("kind"),
                         key=key, found=found or None)
        with self._locked(playbook) as state:
            if state is None:  # the outcome is recorded by the next job (the call's record says it may be done)
                rt.enqueue(job, delay=UPDATE_SETTLE.total_seconds())
                return
            now = rt.clock()
            current = state.open
            if current is not None and current.id == msg.id:
                current.channel, current.ts = ref.channel, ref.ts
                current.shown = max(current.shown, count)
                if current.call.get("at") == msg.call.get("at"):
                    current.call = {}  # this call's record (a later one, after it was taken for lost, stays)
            state.last_call = now
            if state.pending or (current is not None and current.shown < len(current.entries)):
                self._schedule(playbook, state, delay=FLUSH_GAP.total_seconds())
            else:
                state.flush_at = None
            self._write(playbook, state)

    def _failed(self, playbook: str, msg: _Message, job: ResultsJob, e: ChatError, *, outcome: str) -> None:
        """The chat did not take the call: recorded (``outcome`` ``unknown``: a post that may have landed,
        looked for before it is made again), and the job is queued again after a backoff."""
        rt = self.rt
        attempts = job.attempts + 1
        wait = backoff(attempts)
        if outcome == "unknown":
            wait = max(wait, SETTLE.total_seconds())
        log.warning("results digest %s of %s: %s (attempt %d); again in %.0fs", msg.id, playbook, e.what, attempts,
                    wait)
        with self._locked(playbook) as state:
            if state is not None and state.open is not None and state.open.id == msg.id:
                call = state.open.call
                if not call.get("error"):
                    for entry in state.open.entries[state.open.shown:]:
                        rt.audit(str(entry.get("r")), "result_delayed", "worker", digest=msg.id, error=e.what,
                                 reason="the chat did not take the results digest; trying again with backoff")
                state.open.call = {**call, "outcome": outcome, "error": e.what,
                                   "until": _iso(rt.clock() + timedelta(seconds=wait))}
                state.flush_at = rt.clock() + timedelta(seconds=wait)
                self._write(playbook, state)
        rt.enqueue(ResultsJob(playbook=playbook, attempts=min(attempts, 30)), delay=wait)

    def given_up(self, job: ResultsJob) -> None:
        """A ``results`` job delivered too often (the worker crashed or the store failed each time):
        queued again ``RETRY_CAP`` later, so waiting results are delayed, never dropped."""
        self.rt.enqueue(ResultsJob(playbook=job.playbook, attempts=job.attempts), delay=RETRY_CAP)

