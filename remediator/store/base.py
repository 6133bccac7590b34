"""The store port: remediations with compare-and-set, a dedup index, resource locks, an
append-only audit log and a job queue.

Two implementations share one contract test suite: ``SQLiteStore`` (embedded default, one file)
and ``AzureStore`` (Azure Table Storage + Queue Storage; ETags for compare-and-set).

A remediation's ``version`` is its compare-and-set token (a counter in SQLite, the entity ETag in
Table Storage). ``transition`` succeeds only when the stored version still equals the caller's
copy AND the stored state is one of ``from_states``; otherwise it returns None and the caller has
lost the race (a double click, a replayed request, a second worker).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from remediator.evidence.chain import ChainRecord

State = Literal[
    "planned",
    "pending_approval",
    "approved",
    "applying",
    "applied",
    "failed",
    "rejected",
    "expired",
    "stale",
    "no_change",
    "exempt",
    "rolled_back",
    "withdrawn",
]
STATES: tuple[State, ...] = (
    "planned", "pending_approval", "approved", "applying", "applied", "failed", "rejected", "expired", "stale",
    "no_change", "exempt", "rolled_back", "withdrawn",
)
# While a remediation is in one of these, a second finding for the same playbook and resource
# does not open another one (the dedup index holds it).
# ``stale`` is final: the stale remediation hands its slot to the one that asks again for the new plan.
# ``withdrawn`` is final: a pending request whose finding became healthy outside remediator (reconcile).
OPEN_STATES: frozenset[State] = frozenset({"planned", "pending_approval", "approved", "applying"})
FINAL_STATES: frozenset[State] = frozenset(STATES) - OPEN_STATES


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalVote:
    """One recorded Approve (or Reject) click: who, from which Slack org, when."""

    user_id: str
    team_id: str | None
    enterprise_id: str | None
    at: datetime
    decision: Literal["approve", "reject"] = "approve"
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Remediation:
    """One finding's remediation, as stored. Values only; transitions go through the store."""

    id: str  # opaque, unguessable; what Slack buttons carry
    dedup_key: str  # playbook + resource (lower-case)
    finding_id: str
    finding: Mapping[str, Any]  # summary: id, kind, type, title, severity, resource_id, subscription_id, …
    playbook: str
    risk: str
    resource_id: str
    subscription_id: str | None
    state: State
    changes: Sequence[Mapping[str, Any]]  # Change.to_json() (+ "note")
    fingerprint: str | None
    approvers: Sequence[str] = ()  # Slack user (U…/W…) and user-group (S…) ids allowed to approve
    quorum: int = 1
    votes: Sequence[ApprovalVote] = ()
    requester: str | None = None  # who asked (a user for undo; None for Defender)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    reminded: bool = False
    message: Mapping[str, str] = field(default_factory=dict)  # {"channel", "ts"} of the approval message
    error: str | None = None
    undo_of: str | None = None  # for an undo remediation: the remediation it reverses
    attempt: int = 0
    announced: bool = False  # a pending request handed to the chat (a post or a digest job); see ``unannounced``
    trace_context: str | None = None  # W3C traceparent of its trace (remediator.telemetry), when telemetry is on
    # what the plan could not check (``Result.warnings``: a subnet, a peer network missing from the
    # state), shown to the approvers and audited; optional in the document (absent when empty)
    warnings: Sequence[str] = ()
    version: str = ""  # compare-and-set token; set by the store


@dataclass(frozen=True, kw_only=True, slots=True)
class Inbound:
    """A finding as ingest received it: waiting in the inbox to be planned, or planned already.

    The inbox row of a finding id is kept after planning (with the remediation the plan opened or
    joined) so that a redelivery is recognised on arrival, without planning it again.
    """

    finding_id: str
    finding: Mapping[str, Any]  # ``remediator.worker.finding_to_json``: what planning needs
    source: str  # who delivered it ("defender", "eventgrid", "logicapp", …): the actor of its audit events
    received_at: datetime
    waiting: bool = True  # False once planned
    remediation_id: str | None = None  # set when planned: the remediation it opened (or joined as a duplicate)
    planned_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEvent:
    """An append-only record: who did what to which remediation, when."""

    remediation_id: str | None
    event: str  # e.g. "planned", "approval_requested", "approved", "applied", "verify_failed", "paused"
    actor: str  # "defender", "slack:U123", "worker", "system"
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0  # ordering within the store; set by the store
    # Its hash chain (``remediator.evidence.chain``): set by the store on append; a writer leaves
    # ``chain`` empty (the remediation's chain, or the day's system chain) except for anchors.
    # Left out of ``==``: the same event compares equal before and after it is stored.
    chain: str = field(default="", compare=False)
    position: int = field(default=0, compare=False)
    hash: str = field(default="", compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """A unit of queued work. ``receipt`` identifies one delivery (set by the store on dequeue)."""

    kind: str  # "apply", "post", "update", "reply", …
    payload: Mapping[str, Any]
    id: str = ""
    receipt: str = ""
    dequeue_count: int = 0


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
        Moving to a final state frees the dedup slot. Returns the new value, or None if lost."""

    def update(self, current: Remediation, **updates: Any) -> Remediation | None:
        """Compare-and-set of fields other than ``state`` (votes, message ref, reminded)."""

    def list(self, *, states: Iterable[State] | None = None, limit: int = 1000) -> builtins.list[Remediation]: ...

    def unannounced(self, *, limit: int = 10_000) -> builtins.list[tuple[str, str]]:
        """``(id, dedup_key)`` of the ``pending_approval`` remediations not yet ``announced``, oldest
        first: keys only (the dedup key names the playbook and the resource), so that the worker
        can group a storm's requests into digests without loading them."""

    def claim_announced(self, remediation_ids: Sequence[str]) -> builtins.list[str]:
        """Set ``announced`` on each of these that is still ``pending_approval`` and not announced
        (atomic per remediation: of two concurrent claims of one, one wins); the ids this call
        claimed, in input order."""

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

    # audit (hash-chained: ``remediator.evidence.chain``)
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
