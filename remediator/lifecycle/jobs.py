"""The worker's jobs: a frozen dataclass per kind, and its encoding as a queued ``Job``.

``plan``         ``PlanJob(finding_ids, attempt)``: plan received findings, open remediations
``announce``     ``AnnounceJob(delivery, since)``: hand every request not yet announced to ``post``/``post_digest``
                 jobs, once its delivery's findings are planned
``post``         ``PostJob(remediation_id)``: post the approval request, store its message ref
``post_digest``  ``PostDigestJob(remediation_ids, playbook, group, digest_id)``: one message for a storm
``update``       ``UpdateJob(remediation_id)``: re-render the approval message in place
``reply``        ``ReplyJob(remediation_id, kind, text, undo_available)``: a result in the message's thread
``apply``        ``ApplyJob(remediation_id, fingerprint, asked)``: lock, re-plan, compare, elevate, apply, verify
``resume``       ``ResumeJob()``: after ``/remediate resume``, ``apply`` for every approved remediation
``resolved``     ``ResolvedJob(signals, source)``: findings reported healthy: withdraw their pending requests
``notice``       ``NoticeJob(remediation_id, lines)``: the advice of a remediation that changes nothing, posted once
``alarm``        ``AlarmJob(key, title, lines)``: a message about remediator itself (an export gone silent), posted once
``results``      ``ResultsJob(playbook)``: show a playbook's waiting results in its results digest
                 (``remediator.lifecycle.results``)

Jobs a person is waiting on take the urgent lane (``urgent``: the applies people approved and their
message updates), which workers empty first.

The payload is the dataclass's fields by name, as JSON values (tuples as arrays): the format jobs
have always had on the queue, so a job queued by an earlier version decodes (a field added later,
named in the kind's ``SINCE`` or marked ``LATER``, is left out while it holds its default, so such a
job reads as it did). ``decode`` answers
None for a kind it does not know and raises ``JobError`` (a ``ValueError``) for a payload that is
not its kind's; the worker audits the one and lets the other be retried until it is poison.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast, get_args, get_type_hints

from remediator import ids
from remediator.lifecycle.chat import ResultKind
from remediator.lifecycle.model import Job
from remediator.lifecycle.resolution import HealthSignal

PLAN_CHUNK = 500  # findings per plan job at most (one bulk Resource Graph read covers the job's resources)
PLAN_CHUNK_BYTES = 24_000  # and at most this many bytes of finding ids (a queue message holds 48 KiB of JSON)
# A delivery (an ingest call) is split into about PLAN_SPREAD plan jobs so that several workers plan it at
# once, of at least PLAN_MIN findings (a trickle stays one job) and at most PLAN_CHUNK: the number of jobs is
# bounded because each costs a Resource Graph query per subscription it covers, and Resource Graph allows a
# caller about 15 queries per 5 s (learn.microsoft.com/azure/governance/resource-graph/concepts/
# guidance-for-throttled-requests); a 10,000-finding scan stays 20 jobs of 500, as before the split.
PLAN_SPREAD = 8
PLAN_MIN = 20
T = TypeVar("T")
RESULT_KINDS: frozenset[str] = frozenset(get_args(ResultKind))
PLAN_RETRIES = 5  # retries of a plan after transient ARM errors before it is a plan_error
PLAN_BACKOFF = 15.0  # seconds before the first retry; doubling, at most PLAN_BACKOFF_CAP
PLAN_BACKOFF_CAP = 600.0


def plan_backoff(attempt: int) -> float:
    """Seconds before retry ``attempt + 1`` of a plan that met transient errors (15, 30, 60, … ≤ 600)."""
    return float(min(PLAN_BACKOFF * 2 ** max(attempt, 0), PLAN_BACKOFF_CAP))
# a field added after the format settled: left out of the payload while it holds its default, so a job
# encodes as it always did unless it uses the field
LATER: Mapping[str, bool] = {"later": True}


class JobError(ValueError):
    """A queued payload that is not what its kind carries."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanJob:
    KIND: ClassVar[str] = "plan"
    SINCE: ClassVar[frozenset[str]] = frozenset({"attempt"})  # left out at their default: payloads as before
    finding_ids: tuple[str, ...]
    attempt: int = 0  # a retry after transient ARM errors (``remediator.lifecycle.worker``): which one


@dataclass(frozen=True, kw_only=True, slots=True)
class AnnounceJob:
    """``delivery``: the ISO time the findings of the delivery whose plan queued it were received (an
    ingest stamps one time on a delivery's rows); the announce waits while any of them, or of a delivery
    within ``group_wait`` after it, is still being planned by another job, at most ``ANNOUNCE_SETTLE_MAX``
    from ``since`` (when it first waited), so a delivery split into several plan jobs is announced whole
    (``remediator.lifecycle.worker``)."""

    KIND: ClassVar[str] = "announce"
    delivery: str = field(default="", metadata=LATER)
    since: str = field(default="", metadata=LATER)
    waiter: str = field(default="", metadata=LATER)  # the token of the one announce that waits for the delivery


@dataclass(frozen=True, kw_only=True, slots=True)
class PostJob:
    KIND: ClassVar[str] = "post"
    remediation_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PostDigestJob:
    KIND: ClassVar[str] = "post_digest"
    remediation_ids: tuple[str, ...]
    playbook: str
    group: str
    digest_id: str = field(default="", metadata=LATER)  # the digest message's tag (chosen by announce)


@dataclass(frozen=True, kw_only=True, slots=True)
class UpdateJob:
    KIND: ClassVar[str] = "update"
    remediation_id: str
    attempts: int = field(default=0, metadata=LATER)  # chat attempts that failed so far (an outage re-queues it)
    first_failed_at: str = field(default="", metadata=LATER)  # ISO time of the first of them


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplyJob:
    """A thread reply; ``text`` is plain text (the chat escapes it) and may hold ARM errors."""

    KIND: ClassVar[str] = "reply"
    remediation_id: str
    kind: ResultKind
    text: str
    undo_available: bool = False
    attempts: int = field(default=0, metadata=LATER)  # as UpdateJob's
    first_failed_at: str = field(default="", metadata=LATER)
    unsure: bool = field(default=False, metadata=LATER)  # an earlier attempt may have landed: look first


@dataclass(frozen=True, kw_only=True, slots=True)
class NoticeJob:
    """The advice of an ``alert.send-advice`` plan, to post in the channel once (plain text lines)."""

    KIND: ClassVar[str] = "notice"
    remediation_id: str
    lines: tuple[str, ...] = ()
    attempts: int = field(default=0, metadata=LATER)  # as UpdateJob's
    first_failed_at: str = field(default="", metadata=LATER)
    maybe_posted: bool = field(default=False, metadata=LATER)  # an earlier attempt may have landed: look first


@dataclass(frozen=True, kw_only=True, slots=True)
class AlarmJob:
    """A message in the channel about remediator itself (``ChatPort.post_alarm``), posted once: ``key`` names
    what it is about (``export-silent:<subscription>:<since>``); plain text."""

    KIND: ClassVar[str] = "alarm"
    key: str
    title: str
    lines: tuple[str, ...] = ()
    attempts: int = field(default=0, metadata=LATER)  # as UpdateJob's: left out while at their defaults
    first_failed_at: str = field(default="", metadata=LATER)
    maybe_posted: bool = field(default=False, metadata=LATER)  # an earlier attempt may have landed: look first


@dataclass(frozen=True, kw_only=True, slots=True)
class ResultsJob:
    """Show the results waiting in ``playbook``'s results digest (post it, or update it in place)."""

    KIND: ClassVar[str] = "results"
    playbook: str
    attempts: int = 0  # chat attempts that failed so far (an outage re-queues it with backoff)


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplyJob:
    KIND: ClassVar[str] = "apply"
    remediation_id: str
    fingerprint: str | None  # the approved plan's: a job for another plan is skipped
    asked: bool = field(default=False, metadata=LATER)  # people approved it (the urgent lane), not ``auto``
    busy: int = field(default=0, metadata=LATER)  # looks that found the resource held by another apply


@dataclass(frozen=True, kw_only=True, slots=True)
class ResumeJob:
    KIND: ClassVar[str] = "resume"


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolvedJob:
    KIND: ClassVar[str] = "resolved"
    signals: tuple[HealthSignal, ...] = ()
    source: str = "defender"  # who reported them: the actor of the withdrawals


JobPayload = (PlanJob | AnnounceJob | PostJob | PostDigestJob | UpdateJob | ReplyJob | ApplyJob | ResumeJob
              | ResolvedJob | NoticeJob | ResultsJob | AlarmJob)
KINDS: Mapping[str, type[JobPayload]] = {cls.KIND: cls for cls in (
    PlanJob, AnnounceJob, PostJob, PostDigestJob, UpdateJob, ReplyJob, ApplyJob, ResumeJob, ResolvedJob, NoticeJob,
    ResultsJob, AlarmJob)}


# Work a person is waiting on: the apply of a change people approved, and the update of its message
# (``update``; ``resume`` queues the approved applies after a pause). These jobs take the urgent lane
# (``Job.urgent``), which every worker empties first: an approved change never waits behind a backlog of
# thousands of plans and automatic applies. Posting jobs stay in the ordinary lane, in order: a worker
# waiting for its posting second (one per channel per second, shared by every worker) holds its job, so
# urgent posts would keep workers from planning a storm, and its requests would be announced piecemeal.
URGENT_KINDS: frozenset[str] = frozenset({"update", "resume"})


def urgent(job: JobPayload) -> bool:
    """Whether ``job`` takes the urgent lane (``URGENT_KINDS``, or an apply that people approved)."""
    return job.KIND in URGENT_KINDS or (isinstance(job, ApplyJob) and job.asked)


def encode(job: JobPayload) -> Job:
    """The queued form of ``job``, in its lane (``urgent``)."""
    payload: dict[str, Any] = {}
    since: frozenset[str] = getattr(job, "SINCE", frozenset())
    for f in dataclasses.fields(job):
        value = getattr(job, f.name)
        if (f.name in since or f.metadata.get("later")) and value == f.default:
            continue
        if isinstance(value, tuple):
            value = [v.to_json() if isinstance(v, HealthSignal) else v for v in value]
        payload[f.name] = value
    return Job(kind=job.KIND, payload=payload, urgent=urgent(job))


def decode(job: Job) -> JobPayload | None:
    """The typed payload of a queued job; None for an unknown kind, ``JobError`` for a bad payload.

    Each field is read by its type (``_READERS``); a field with a default may be absent, null or
    empty (payloads of earlier versions), one without may not."""
    cls = KINDS.get(job.kind)
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        raw = job.payload.get(f.name)
        if raw is None or raw == "":
            if f.default is not dataclasses.MISSING:
                continue
            if f.name not in job.payload:
                raise JobError(f"{job.kind} job: the payload has no {f.name!r}")
        values[f.name] = _READERS[_TYPES[cls][f.name]](raw)
    return cls(**values)


def _strs(value: object) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise JobError(f"a list of ids, got {type(value).__name__}")
    return tuple(str(v) for v in value)


def _result_kind(value: object) -> ResultKind:
    kind = str(value)
    if kind not in RESULT_KINDS:
        raise JobError(f"reply job: kind {kind[:40]!r}; valid: {', '.join(sorted(RESULT_KINDS))}")
    return cast(ResultKind, kind)


def _signals(value: object) -> tuple[HealthSignal, ...]:
    items = value if isinstance(value, (list, tuple)) else ()
    return tuple(HealthSignal.from_json(s) for s in items if isinstance(s, Mapping))


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise JobError(f"a whole number, got {type(value).__name__}")
    try:
        n = int(value)
    except ValueError:
        raise JobError(f"a whole number, got {str(value)[:20]!r}") from None
    if n < 0:
        raise JobError(f"a whole number of at least 0, got {n}")
    return n


_READERS: Mapping[object, Callable[[Any], object]] = {
    str: str, bool: bool, int: _count, str | None: lambda v: None if v is None else str(v), tuple[str, ...]: _strs,
    ResultKind: _result_kind, tuple[HealthSignal, ...]: _signals,
}
_TYPES = {cls: get_type_hints(cls) for cls in KINDS.values()}


def plan_chunks(finding_ids: Iterable[str]) -> Iterator[list[str]]:
    """``finding_ids`` in lists of at most ``PLAN_CHUNK`` ids and ``PLAN_CHUNK_BYTES`` bytes."""
    chunk: list[str] = []
    size = 0
    for fid in finding_ids:
        n = len(fid.encode()) + 4
        if chunk and (len(chunk) >= PLAN_CHUNK or size + n > PLAN_CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(fid)
        size += n
    if chunk:
        yield chunk


def plan_size(findings: int) -> int:
    """The plan-job size for a delivery of ``findings``: ``findings / PLAN_SPREAD``, at least ``PLAN_MIN``
    and at most ``PLAN_CHUNK`` (a backlog becomes several jobs; a trickle stays one)."""
    return min(PLAN_CHUNK, max(PLAN_MIN, math.ceil(findings / PLAN_SPREAD)))


def by_resource(items: Iterable[T], resource_of: Callable[[T], str]) -> list[T]:
    """``items`` with each resource's together (resources in first-seen order, stably ordered by
    subscription; a resource's items in their order): what ``plan_groups`` and ingest's slices cut at
    resource boundaries."""
    groups: dict[str, list[T]] = {}
    for item in items:
        groups.setdefault(ids.key(resource_of(item)), []).append(item)
    return [item for key in sorted(groups, key=_subscription_of) for item in groups[key]]


def resource_slices(items: Iterable[T], resource_of: Callable[[T], str], size: int) -> Iterator[list[T]]:
    """``by_resource(items)`` in slices of about ``size``: a slice is cut between two resources (so it may
    pass ``size`` by the last resource's items less one), inside a resource only at twice ``size``."""
    piece: list[T] = []
    last = ""
    for item in by_resource(items, resource_of):
        key = ids.key(resource_of(item))
        if len(piece) >= size and (key != last or len(piece) >= 2 * size):
            yield piece
            piece = []
        piece.append(item)
        last = key
    if piece:
        yield piece


def plan_groups(findings: Iterable[tuple[str, str]], *, size: int | None = None) -> Iterator[list[str]]:
    """``(finding id, resource id)`` pairs as the finding-id lists of plan jobs of about ``size`` findings
    (by default ``plan_size`` of their number; ingest passes the size for the whole delivery, which it
    stores in slices).

    A resource's findings stay in one job (in their order), so no two jobs plan the same resource at
    once: one opens its remediation, the others in the same job join it, and one bulk read covers it.
    Resources are ordered by subscription (stable otherwise), so a job's bulk Resource Graph read is
    one query per subscription it covers, mostly one. A job is cut before the resource that would
    take it past the size; only a resource with more findings than ``PLAN_CHUNK`` (or its ids past
    ``PLAN_CHUNK_BYTES``) is split itself."""
    pairs = by_resource(findings, lambda pair: pair[1])
    size = size or plan_size(len(pairs))
    chunk: list[str] = []
    nbytes = 0
    for _, run in itertools.groupby(pairs, key=lambda pair: ids.key(pair[1])):
        group = [fid for fid, _ in run]
        weight = sum(len(fid.encode()) + 4 for fid in group)
        if chunk and (len(chunk) + len(group) > size or nbytes + weight > PLAN_CHUNK_BYTES):
            yield chunk
            chunk, nbytes = [], 0
        for fid in group:
            n = len(fid.encode()) + 4
            if chunk and (len(chunk) >= PLAN_CHUNK or nbytes + n > PLAN_CHUNK_BYTES):
                yield chunk
                chunk, nbytes = [], 0
            chunk.append(fid)
            nbytes += n
    if chunk:
        yield chunk


def _subscription_of(key: str) -> str:
    parts = key.split("/")
    return parts[2] if len(parts) > 2 and parts[1] == "subscriptions" else ""
