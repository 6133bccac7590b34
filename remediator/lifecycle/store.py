"""The store port the life cycle runs on: remediations with compare-and-set, a dedup index,
resource locks, an append-only hash-chained audit log and a job queue.

The life cycle owns this port; ``remediator.store`` implements it (``SQLiteStore``, the embedded
default, and ``AzureStore`` on Table and Queue Storage), and one contract suite tests both.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from remediator.lifecycle.chain import ChainRecord
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Remediation, State


class Store(Protocol):
    """Persistence for the engine. All methods are safe to call from several threads/processes."""

    def batch(self) -> AbstractContextManager[None]:
        """Group the writes made inside the block (on this thread) into one transaction where the
        backend can: one commit for a whole ingest burst on SQLite; a no-op on Azure, where each
        write stays its own operation. Every method keeps its own atomicity either way; an
        exception inside the block rolls the whole group back on SQLite."""

    # remediations
    def create(self, remediation: Remediation) -> tuple[Remediation, bool]:
        """Insert unless an open remediation already holds ``remediation.dedup_key``.

        Returns (stored, True) when inserted, (the open one, False) when deduplicated. Atomic.
        A remediation created in a final state (no_change, exempt) does not take the dedup slot.
        """

    def create_many(self, remediations: Iterable[Remediation]) -> builtins.list[tuple[Remediation, bool]]:
        """``create`` for a batch (ingest of a storm): one result per input, in input order.

        Later items deduplicate against earlier ones in the same batch. SQLite runs the batch in one
        transaction (all or nothing); Table Storage has no cross-partition transaction, so there it
        is a loop of ``create`` (each item atomic on its own).
        """

    def get(self, remediation_id: str) -> Remediation | None: ...

    def transition(self, current: Remediation, to: State, *, from_states: Iterable[State],
                   **updates: Any) -> Remediation | None:
        """Compare-and-set: move ``current`` to ``to`` (applying ``updates`` to other fields) iff the
        stored version equals ``current.version`` and the stored state is in ``from_states``.
        Moving to a final state frees the dedup slot. Returns the new value, or None if lost.
        A move ``TRANSITIONS`` does not allow from any of ``from_states`` raises
        ``ForbiddenTransition`` (``remediator.lifecycle.model``) before anything is read or written."""

    def update(self, current: Remediation, **updates: Any) -> Remediation | None:
        """Compare-and-set of fields other than ``state`` (votes, message ref, reminded)."""

    def list(self, *, states: Iterable[State] | None = None, limit: int = 1000) -> builtins.list[Remediation]: ...

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

    def waiting(self, *, received_before: datetime, limit: int = 1000) -> builtins.list[str]:
        """Ids of findings still waiting to be planned that were received before the given time,
        oldest first (the sweep re-queues their plan jobs if these were lost)."""

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

    # queue
    def enqueue(self, job: Job, *, delay_seconds: float = 0) -> Job: ...

    def dequeue(self, *, visibility_seconds: float = 60) -> Job | None:
        """The next visible job, hidden for ``visibility_seconds``; redelivered if not completed."""

    def complete(self, job: Job) -> None:
        """Delete a dequeued job (by its receipt)."""

    # settings shared by all instances (pause flag, budgets)
    def get_flag(self, name: str) -> str | None: ...

    def set_flag(self, name: str, value: str | None) -> None: ...

    def incr_counter(self, name: str, window_start: datetime) -> int:
        """Atomically add one to the counter ``name`` for the window; returns the new value."""

    def prune_counters(self, *, before: datetime) -> int:
        """Forget the counters of every window that started before the given time (the sweep keeps
        a few days: hourly budgets, one-second Slack post windows); returns how many."""
