"""The remediation life cycle's records: a remediation and its states, approval votes, inbound
findings, audit events and jobs (the store port that keeps them is ``remediator.lifecycle.store``).

Two implementations share one contract test suite: ``SQLiteStore`` (embedded default, one file)
and ``AzureStore`` (Azure Table Storage + Queue Storage; ETags for compare-and-set).

A remediation's ``version`` is its compare-and-set token (a counter in SQLite, the entity ETag in
Table Storage). ``transition`` succeeds only when the stored version still equals the caller's
copy AND the stored state is one of ``from_states``; otherwise it returns None and the caller has
lost the race (a double click, a replayed request, a second worker).

Which moves exist at all is ``TRANSITIONS``: both stores refuse any other (``check_transition``,
before they read or write anything), so a move the life cycle does not know is a loud
programming error, never a silent state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from remediator.words import noun

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

# The moves of the life cycle, state -> the states it may move to, and who makes each one. A final
# state moves nowhere (``applied`` only to ``rolled_back``, by an applied undo), so no move reopens
# a remediation: a dedup slot, once given up, is never taken back (the stores rely on it).
TRANSITIONS: Mapping[State, frozenset[State]] = {
    # decided when it opens (one write today: it is created pending or approved); a poison job fails it
    "planned": frozenset({"pending_approval", "approved", "failed"}),
    # Engine.approve / reject, expiry (a click or the sweep), withdrawal (resolved, reconcile), a poison job
    "pending_approval": frozenset({"approved", "rejected", "expired", "withdrawn", "failed"}),
    # the apply job: applying, or the pre-apply check ends it (stale, no_change, exempt, failed)
    "approved": frozenset({"applying", "stale", "no_change", "exempt", "failed"}),
    # the apply job (or a later delivery recovering a crashed one)
    "applying": frozenset({"applied", "failed", "stale", "no_change", "exempt"}),
    "applied": frozenset({"rolled_back"}),  # its undo was applied and verified
    **{state: frozenset() for state in ("failed", "rejected", "expired", "stale", "no_change", "exempt",
                                        "rolled_back", "withdrawn")},
}


class ForbiddenTransition(ValueError):
    """A move ``TRANSITIONS`` does not allow: a programming error (raised before anything is written)."""


def check_states(states: Iterable[str], what: str) -> tuple[State, ...]:
    """Validate a collection of states (a typo is an error, not an empty result)."""
    out = tuple(states)
    bad = [s for s in out if s not in STATES]
    if bad:
        raise ValueError(f"{what}: unknown {noun(len(bad), 'state')} {', '.join(map(repr, bad))}; "
                         f"valid: {', '.join(STATES)}")
    return cast(tuple[State, ...], out)


def check_transition(from_states: Iterable[str], to: str) -> tuple[State, ...]:
    """``from_states`` as a tuple once every ``from -> to`` is in ``TRANSITIONS``; ``ValueError``
    for an unknown state, ``ForbiddenTransition`` naming the first move that is not allowed."""
    froms = check_states(from_states, "from_states")
    (target,) = check_states((to,), "to")
    for state in froms:
        if target not in TRANSITIONS[state]:
            allowed = ", ".join(sorted(TRANSITIONS[state])) or "nothing: it is final"
            raise ForbiddenTransition(f"transition {state} -> {target} is not allowed (from {state}: {allowed})")
    return froms


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
    # a pending request whose approval message Slack confirmed (its ref is in ``message``); until then it
    # is ``unannounced`` and the announce job (queued by the sweep too) keeps offering it to the chat
    announced: bool = False
    # the intent of posting its message, recorded (compare-and-set) before each attempt: the message's
    # tag (``tag``: "request:<id>" or "digest:<id>"), ``first`` and ``at`` (ISO times of the first and the
    # latest attempt), ``attempts``, ``outcome`` ("pending" while an attempt may be in flight, "unknown"
    # after a timeout or 5xx, "failed" when the chat answered no), ``error`` and ``retry_at`` (no new
    # attempt before it); empty once announced (``remediator.lifecycle.posting``)
    posting: Mapping[str, Any] = field(default_factory=dict)
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
    finding: Mapping[str, Any]  # ``remediator.lifecycle.codec.finding_to_json``: what planning needs
    source: str  # who delivered it ("defender", "eventgrid", "logicapp", …): the actor of its audit events
    received_at: datetime
    waiting: bool = True  # False once planned
    remediation_id: str | None = None  # set when planned: the remediation it opened (or joined as a duplicate)
    planned_at: datetime | None = None
    # a random token set each time the row is (re)set to waiting: with the playbook it derives the id
    # of the remediation this reception opens, so planning it twice creates it once ("": rows stored
    # before it existed; their remediations get random ids)
    generation: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEvent:
    """An append-only record: who did what to which remediation, when."""

    remediation_id: str | None
    event: str  # e.g. "planned", "approval_requested", "approved", "applied", "verify_failed", "paused"
    actor: str  # "defender", "slack:U123", "worker", "system"
    at: datetime
    detail: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0  # ordering within the store; set by the store
    # Its hash chain (``remediator.lifecycle.chain``): set by the store on append; a writer leaves
    # ``chain`` empty (the remediation's chain, or the day's system chain) except for anchors.
    # Left out of ``==``: the same event compares equal before and after it is stored.
    chain: str = field(default="", compare=False)
    position: int = field(default=0, compare=False)
    hash: str = field(default="", compare=False)


QuarantineSource = Literal["remediation", "inbox", "job"]
QUARANTINE_EVENT = "quarantined"


@dataclass(frozen=True, kw_only=True, slots=True)
class Quarantined:
    """A stored row or queued message that could not be decoded, moved aside so the rest keeps flowing."""

    source: QuarantineSource  # where it came from: a remediation row, an inbox row, a queued job
    key: str  # its key there (remediation id, finding id, message id)
    error: str  # one line: why it could not be decoded
    at: datetime  # when it was quarantined
    raw: str = ""  # what was stored (the document or message text, cut to a bounded length)


def error_summary(exc: BaseException, limit: int = 300) -> str:
    """One line naming the exception, for a quarantine entry."""
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text}"[:limit]


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    """A unit of queued work. ``receipt`` identifies one delivery (set by the store on dequeue)."""

    kind: str  # "apply", "post", "update", "reply", …
    payload: Mapping[str, Any]
    id: str = ""
    receipt: str = ""
    dequeue_count: int = 0
    # the urgent lane: work a person is waiting on (``remediator.lifecycle.jobs.urgent``), dequeued before
    # the rest (an Azure store keeps it in a queue of its own, which a dequeued job remembers)
    urgent: bool = False

