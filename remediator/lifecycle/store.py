"""The store port the life cycle runs on: remediations with compare-and-set, a dedup index,
resource locks, an append-only hash-chained audit log and a job queue.

The life cycle owns this port; ``remediator.store`` implements it (``SQLiteStore``, the embedded
default, and ``AzureStore`` on Table and Queue Storage), and one contract suite tests both.

**State and trail move together.** ``create``/``create_many``, ``transition`` and ``update`` take
the audit record(s) that go with the write (``audit=``: one ``AuditEvent`` or a sequence, each about
that remediation) and store them atomically with it: in the same SQLite transaction, in one
entity-group transaction on Table Storage. A write that is lost (a lost race, a crash, a storage
outage) leaves neither the state nor its record; no state exists without the record that explains it.

**Bad rows are quarantined.** A stored remediation, inbox row or queued job that cannot be decoded
is moved to the quarantine (``quarantined()`` lists it, with the error, its key, where it came from
and when) and audited as a system event ``quarantined``; the read that met it goes on with the rest.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from remediator.lifecycle.chain import ChainRecord
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Quarantined, QuarantineSource, Remediation, State

# The audit record(s) that go with a remediation write: one event, or a sequence (may be empty).
Audit = AuditEvent | Sequence[AuditEvent]


def audit_events(audit: Audit | None, remediation_id: str) -> tuple[AuditEvent, ...]:
    """``audit`` as a tuple, each checked to be about ``remediation_id`` (its chain is the remediation's);
    a record about anything else cannot share the remediation's transaction: ``ValueError``."""
    if audit is None:
        return ()
    events = (audit,) if isinstance(audit, AuditEvent) else tuple(audit)
    for event in events:
        if event.remediation_id != remediation_id or event.chain not in ("", remediation_id):
            raise ValueError(f"audit record {event.event!r} is about {event.remediation_id or event.chain!r}, "
                             f"not remediation {remediation_id!r}: it cannot be written with that remediation")
    return events


class Store(Protocol):
    """Persistence for the engine. All methods are safe to call from several threads/processes."""

    def batch(self) -> AbstractContextManager[None]:
        """Group the writes made inside the block (on this thread) into one transaction where the
        backend can: one commit for a whole ingest burst on SQLite; a no-op on Azure, where each
        write stays its own operation. Every method keeps its own atomicity either way; an
        exception inside the block rolls the whole group back on SQLite."""

    # remediations
    def create(self, remediation: Remediation, *, audit: Audit | None = None) -> tuple[Remediation, bool]:
        """Insert unless an open remediation already holds ``remediation.dedup_key``.

        Returns (stored, True) when inserted, (the open one, False) when deduplicated. Atomic.
        A remediation created in a final state (no_change, exempt) does not take the dedup slot.
        ``audit`` (its opening records) is written with the insert, as positions 1.. of its chain;
        nothing of it is written when deduplicated.
        The same create again (an id that exists with the same dedup key, whatever its state now:
        a plan job delivered twice) returns (the stored one, False); another remediation with that id
        is a ``ValueError``.
        """

    def create_many(self, remediations: Iterable[Remediation], *,
                    audits: Sequence[Audit | None] | None = None) -> builtins.list[tuple[Remediation, bool]]:
        """``create`` for a batch (ingest of a storm): one result per input, in input order;
        ``audits[i]`` is the ``audit`` of ``remediations[i]``.

        Later items deduplicate against earlier ones in the same batch. SQLite runs the batch in one
        transaction (all or nothing); Table Storage has no cross-partition transaction, so there it
        is a loop of ``create`` (each item atomic on its own).
        """

    def get(self, remediation_id: str) -> Remediation | None: ...

    def transition(self, current: Remediation, to: State, *, from_states: Iterable[State],
                   audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set: move ``current`` to ``to`` (applying ``updates`` to other fields) iff the
        stored version equals ``current.version`` and the stored state is in ``from_states``.
        Moving to a final state frees the dedup slot. Returns the new value, or None if lost.
        A move ``TRANSITIONS`` does not allow from any of ``from_states`` raises
        ``ForbiddenTransition`` (``remediator.lifecycle.model``) before anything is read or written.
        ``audit`` is appended to the remediation's chain in the same atomic write (None: not at all)."""

    def update(self, current: Remediation, *, audit: Audit | None = None, **updates: Any) -> Remediation | None:
        """Compare-and-set of fields other than ``state`` (votes, message ref, reminded), with ``audit``
        written atomically with it like ``transition``'s."""

    def list(self, *, states: Iterable[State] | None = None, limit: int = 1000) -> builtins.list[Remediation]: ...

    def remediation_states(self) -> builtins.list[tuple[str, State]]:
        """``(id, state)`` of every remediation, no documents decoded (audit verification, the report)."""

    def unannounced(self, *, limit: int = 10_000) -> builtins.list[tuple[str, str]]:
        """``(id, dedup_key)`` of the ``pending_approval`` remediations not yet ``announced`` (their
        message not confirmed by the chat), oldest first: keys only (the dedup key names the playbook
        and the resource), so that the worker can group a storm's requests into digests without
        loading them."""

    # the inbox: findings received, waiting to be planned (ingest → plan jobs)
    def receive(self, findings: Sequence[Inbound]) -> builtins.list[bool]:
        """Put findings in the inbox; one answer per input, in input order. True: queued for planning
        (a new finding id, or a known one whose earlier plan is over: it opened nothing, or its
        remediation is in a final state; the row is reset to waiting). False: a duplicate (it is
        waiting already, or the remediation it opened is still open). Later items deduplicate
        against earlier ones. Atomic per item; one transaction for the call on SQLite."""

    def inbound(self, finding_ids: Iterable[str]) -> builtins.list[Inbound]:
        """The inbox rows of these finding ids (the ones that exist), in input order."""

    def waiting(self, *, received_before: datetime, received_after: datetime | None = None,
                limit: int = 1000) -> builtins.list[str]:
        """Ids of findings still waiting to be planned that were received before the given time (and
        at or after ``received_after``), oldest first (the sweep re-queues their plan jobs if these
        were lost; an announce waits while its delivery's are being planned)."""

    def mark_planned(self, outcomes: Mapping[str, str | None], *, at: datetime) -> None:
        """Finding id → the remediation its plan opened or joined (None: it opened none): the rows
        stop waiting. Unknown ids are ignored."""

    def prune_inbox(self, *, planned_before: datetime) -> int:
        """Forget planned rows planned before the given time (a later redelivery of one is planned
        again and deduplicated by the remediations' index instead); returns how many."""

    # locks
    def acquire_lock(self, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock if free or expired; True on success. Re-entrant for the same owner."""

    def release_lock(self, key: str, owner: str) -> None: ...

    # leases: locks with a fencing token (``remediator.lifecycle.lease``)
    def acquire_lease(self, key: str, owner: str, ttl_seconds: float) -> int | None:
        """Take ``key`` for ``owner`` until now + ``ttl_seconds`` if it is free or expired, and return
        its fencing token: a number that grows on every acquisition of the key (kept across releases),
        so a holder that lost the key can be told from the one that has it. None when another owner
        holds it. The owner taking its own key again gets a new token (its old one stops checking)."""

    def renew_lease(self, key: str, owner: str, token: int, ttl_seconds: float) -> bool:
        """Extend the lease to now + ``ttl_seconds`` iff ``owner`` still holds it with ``token`` (nobody
        acquired it since, even after it expired); False: the lease is lost."""

    def check_lease(self, key: str, owner: str, token: int) -> bool:
        """The fencing check: ``owner`` holds ``key`` with ``token`` and the lease has not expired."""

    # audit (hash-chained: ``remediator.lifecycle.chain``)
    def audit(self, event: AuditEvent) -> None:
        """Append to the event's chain: position = the chain's last + 1, ``prev`` = that record's hash
        (atomic per chain: two concurrent appends never take one position)."""

    def audit_log(self, remediation_id: str | None = None) -> builtins.list[AuditEvent]:
        """Events in order; all of them when ``remediation_id`` is None (anchors left out: they are
        evidence about the events, read with ``audit_records``)."""

    def audit_records(self) -> Iterator[ChainRecord]:
        """Every audit record as stored (anchors included), by chain and position, for verification.
        Records written before chaining existed (Azure Tables) come with position 0 and no hash."""

    def anchor(self) -> int:
        """Append anchor records over every chain that grew since the last anchor; how many."""

    # quarantine (rows and messages that could not be decoded)
    def quarantined(self, *, limit: int = 1000) -> builtins.list[Quarantined]:
        """What was quarantined, oldest first, at most ``limit``."""

    def quarantine_count(self) -> int:
        """How many entries the quarantine holds (``doctor``, ``/remediate status``)."""

    def quarantine(self, *, source: QuarantineSource, key: str, raw: str, error: str) -> None:
        """Keep something that could not be decoded outside the store's own reads (a queue message the
        Functions host delivered) in the quarantine, and audit it (``quarantined``)."""

    # queue
    def enqueue(self, job: Job, *, delay_seconds: float = 0) -> Job:
        """Queue ``job`` (visible ``delay_seconds`` from now) in its lane: ``job.urgent`` (work a person is
        waiting on: an approved apply, its message's update) or the rest (plans, posts, automatic applies)."""

    def dequeue(self, *, visibility_seconds: float = 60) -> Job | None:
        """The next visible job, hidden for ``visibility_seconds``; redelivered if not completed. The urgent
        lane's visible jobs come before the other's: an approved change never waits behind a backlog of
        automatic ones. A message that is not a job (not base64, not JSON, no kind) is quarantined and
        deleted, and the next one read."""

    def complete(self, job: Job) -> None:
        """Delete a dequeued job (by its receipt)."""

    def extend(self, job: Job, seconds: float) -> Job | None:
        """Keep a dequeued job hidden for ``seconds`` more from now (a long job's delivery stays its
        own); the job with its current receipt (Queue Storage issues a new pop receipt: complete with
        the returned one), or None when this delivery is no longer current (completed, or redelivered
        to someone else)."""

    # settings shared by all instances (pause flag, budgets)
    def get_flag(self, name: str) -> str | None: ...

    def set_flag(self, name: str, value: str | None) -> None: ...

    def incr_counter(self, name: str, window_start: datetime) -> int:
        """Atomically add one to the counter ``name`` for the window; returns the new value."""

    def prune_counters(self, *, before: datetime) -> int:
        """Forget the counters of every window that started before the given time (the sweep keeps
        a few days: hourly budgets, one-second Slack post windows); returns how many."""
