"""The worker: one queued job at a time (``remediator.lifecycle.jobs``) → plans, chat messages, applies.

``Worker.handle`` decodes a ``Job`` into its typed payload and runs its handler: planning and
announcing here, the ``apply`` job in ``remediator.lifecycle.applying``. A job delivered more than
``max_deliveries`` times is poison: an apply's remediation becomes ``failed``; a ``plan`` job's
findings are marked planned with nothing opened, and audited (``plan_failed``) with the reason;
any other is dropped and audited. A job of a kind this version does not know is dropped and
audited; a payload its kind cannot read raises, so it is retried until it is poison.

Planning (``Worker.plan_findings``) reads the findings' rows from the inbox (only those still
waiting: a redelivered job, or one the sweep re-queued, plans nothing twice), plans them through
the ``Planner``, creates their remediations in one ``create_many`` (the dedup index decides, as
ever), audits them (``remediator.lifecycle.opening``), marks the rows planned and, when it opened
requests, queues ``announce`` ``group_wait`` later (before the applies of the automatic ones, so
people are asked first; it waits while other jobs still plan the rest of the delivery), then the
applies. A state read that raises fails the whole job, which is retried.

One remediation per reception, even when the job runs twice at once (a redelivery while the first
delivery still runs): its id is derived from the inbox row's ``generation`` and the playbook
(``remediator.lifecycle.opening.remediation_id``), so the second ``create`` finds the first's and
opens, audits and queues nothing.

Transient ARM answers (5xx, 429, timeouts: the planner marks the error result ``transient``) do
not end a finding: it stays waiting and goes into a plan job of its own ``plan_backoff(attempt)``
seconds later (``PLAN_BACKOFF``, doubling), up to ``PLAN_RETRIES`` retries; only then is it a loud
``plan_error`` (audited with the attempts). A finding that ended in ``plan_error`` opened nothing,
so its next delivery or the reconcile's scan queues it again.

Bulk state: when the runtime has a Resource Graph (``Runtime.graph``), a plan job first reads the
resources of all its findings in bulk (``remediator.azure.graph.GraphState``) and plans from those
documents; anything else it needs is read live. Apply never uses them: its check re-reads live.

Chat jobs: ``post`` and ``post_digest`` are ``remediator.lifecycle.posting`` (a request is
announced only once the chat confirmed its message; at most one message per request). ``update``
and ``reply`` that meet a chat outage (``ChatError``, transient) re-queue themselves with backoff
instead of raising, so an outage never burns their deliveries into poison; one that retrying
cannot mend, or still failing after ``CHAT_GIVE_UP``, ends with an audited ``chat_failed`` whose
reason says what failed, how often and for how long. The result of a remediation with no approval
message (auto-applied), or of one approved in a digest, is not a message of its own: ``reply`` adds
it to its playbook's results digest and ``results`` jobs post or update that message
(``remediator.lifecycle.results``).

Withdrawal (``Worker.withdraw``; by ``resolved`` jobs and by ``Engine.reconcile`` after a scan): a
``pending_approval`` request (reminded or not) whose finding is healthy now moves to ``withdrawn``
(compare-and-set: an approval that won the race stands, and the apply's re-plan then ends it
``no_change``), its message is re-rendered without buttons ("resolved outside remediator"), the
thread says why, the audit records the reason; nothing is written to ARM.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

from remediator import ids, telemetry
from remediator.azure.state import StateReader
from remediator.errors import error_line
from remediator.lifecycle.applying import Applier
from remediator.lifecycle.chat import ChatError, MessageTag, reply_key, thread_of
from remediator.lifecycle.codec import finding_from_json
from remediator.lifecycle.jobs import (
    PLAN_RETRIES,
    AlarmJob,
    AnnounceJob,
    ApplyJob,
    JobPayload,
    NoticeJob,
    PlanJob,
    PostDigestJob,
    PostJob,
    ReplyJob,
    ResolvedJob,
    ResultsJob,
    ResumeJob,
    UpdateJob,
    decode,
    plan_backoff,
    plan_groups,
)
from remediator.lifecycle.model import OPEN_STATES, Inbound, Job, Remediation
from remediator.lifecycle.opening import Opening, build, opened, opening_records
from remediator.lifecycle.posting import Poster, backoff
from remediator.lifecycle.resolution import finding_keys
from remediator.lifecycle.results import ResultDigests
from remediator.lifecycle.runtime import PAUSE_FLAG, Runtime
from remediator.planning.result import Result

log = logging.getLogger("remediator.worker")

__all__ = ["PAUSE_FLAG", "Planned", "Worker"]

DIGEST_MAX = 500  # remediations per digest message (a queue message stays far below 64 KB)
ANNOUNCE_MAX = 50_000  # request keys one announce job reads; more are left to the next one it queues
NOTICE_LINES = 40  # lines of advice one notice carries (alert.send-advice plans at most 1 + 7 + 12)
ANNOUNCE_SETTLE_STEP = 2.0  # seconds between an announce's looks at its delivery's planning
ANNOUNCE_SETTLE_MAX = timedelta(minutes=2)  # an announce waits for its delivery's planning at most this long
# what becomes of a digest member's change (told in the results digest, not one thread reply each)
DIGEST_RESULTS: frozenset[str] = frozenset({"applied", "failed", "stale", "rolled_back", "info"})
CHAT_GIVE_UP = timedelta(hours=24)  # a thread reply or message update is retried through a chat outage this long


@dataclass(frozen=True, kw_only=True)
class Planned:
    """What planning did with one received finding."""

    record: Mapping[str, str | None]  # the finding summary: id, kind, type, resource_id
    # changes, no_changes, exempt, no_match, error, "duplicate" (it joined an open remediation), or
    # "retry" (ARM answered "later": it stays waiting and is planned again after a backoff)
    outcome: str
    remediation: Remediation | None
    reason: str


class Worker:
    """Handles one job at a time; see the module docstring."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.applier = Applier(rt)
        self.poster = Poster(rt)
        self.results = ResultDigests(rt)

    def handle(self, job: Job) -> None:
        if job.dequeue_count > self.rt.settings.max_deliveries:
            self.poison(job)
            return
        payload = decode(job)
        match payload:
            case None:
                log.error("dropping job %s of unknown kind %r", job.id, job.kind)
                self.rt.audit(None, "job_dropped", "worker", kind=job.kind, reason="unknown job kind")
            case PlanJob():
                self.plan_findings(payload.finding_ids, attempt=payload.attempt)
            case AnnounceJob():
                self.announce(payload)
            case PostJob():
                self.post(payload)
            case PostDigestJob():
                self.post_digest(payload)
            case UpdateJob():
                self.update(payload)
            case ReplyJob():
                self.reply(payload, redelivered=job.dequeue_count > 1)
            case ApplyJob():
                self.applier.apply(payload)
            case ResumeJob():
                self.resume()
            case ResolvedJob():
                self.resolved(payload)
            case NoticeJob():
                self.notice(payload)
            case AlarmJob():
                self.alarm(payload)
            case ResultsJob():
                self.results.flush(payload)
            case _:
                assert_never(payload)

    def poison(self, job: Job, reason: str | None = None) -> None:
        """End a job delivered more than ``max_deliveries`` times: its plan's findings stop waiting, the
        remediation of an apply job is ``failed`` with ``reason`` (by default: what is known, that every
        delivery crashed or timed out), any other is audited as dropped (a request whose post was given
        up stays approvable and expires as usual). It never raises:
        each step is guarded and logged, so the job is completed whatever the store does (a poison job
        redelivered forever is worse than one whose ending could not be fully recorded)."""
        reason = reason or (f"gave up after {job.dequeue_count} deliveries of the {job.kind} job "
                            "(the worker crashed or timed out each time)")
        log.error("poison job %s: %s", job.id, reason)
        payload: JobPayload | None
        try:
            payload = decode(job)
        except Exception:  # a payload that is not its kind's (JobError), or anything else: ended all the same
            payload = None
        if isinstance(payload, PlanJob):
            findings = payload.finding_ids
            _guarded(f"ending the plan job {job.id}", lambda: self._plan_failed(findings, reason))
            return
        if isinstance(payload, ResultsJob):  # its results wait in the digest's state: delayed, never dropped
            results = payload
            _guarded(f"queueing the results job {job.id} again", lambda: self.results.given_up(results))
            _guarded(f"auditing the poison job {job.id}", lambda: self.rt.audit(
                None, "job_dropped", "worker", kind=job.kind, reason=reason, playbook=results.playbook,
                requeued=True))
            return
        try:
            rid = job.payload.get("remediation_id") if payload is None else getattr(payload, "remediation_id", None)
        except Exception:  # a payload that is not even a mapping
            rid = None
        rem: Remediation | None = None
        if rid:
            try:
                rem = self.rt.store.get(str(rid))
            except Exception:
                log.exception("poison job %s: reading remediation %s failed; ending the job all the same", job.id, rid)
        if isinstance(payload, ApplyJob) and rem is not None and rem.state in OPEN_STATES:
            failing = rem
            if _guarded(f"failing remediation {rem.id}", lambda: self.applier.fail(failing, reason)):
                return
        target = rem.id if rem else None
        extra = {"remediation": str(rid)[:64]} if rid and rem is None else {}
        _guarded(f"auditing the poison job {job.id}", lambda: self.rt.audit(
            target, "job_dropped", "worker", kind=job.kind, reason=reason, **extra))

    # -- planning ---------------------------------------------------------------------------
    def plan_findings(self, finding_ids: Sequence[str], *, attempt: int = 0) -> list[Planned]:
        rt = self.rt
        rows = [row for row in rt.store.inbound(finding_ids) if row.waiting]
        if not rows:
            return []
        planner = rt.planner(self._bulk_state(rows))
        out: list[Planned] = []
        outcomes: dict[str, str | None] = {}
        batch: list[tuple[Inbound, Opening, Result]] = []
        later: list[tuple[Inbound, Result]] = []  # transient ARM errors: planned again after a backoff
        tel = telemetry.current()
        for row in rows:
            finding = finding_from_json(row.finding)
            trace = row.finding.get("traceparent") if tel.enabled else None
            with tel.span("remediator.plan", parent=trace, finding_id=finding.id,
                          resource=finding.resource_id) as span:
                result = planner.plan_one(finding)
                span.set(outcome=result.outcome, playbook=result.playbook)
                if result.outcome in ("changes", "no_changes", "exempt"):
                    opening = build(rt, finding, result, trace_context=str(trace) if trace else span.traceparent,
                                    generation=row.generation)
                    span.set(remediation_id=opening.remediation.id)
                    batch.append((row, opening, result))
                    continue
            if result.outcome == "error" and result.extra.get("transient") and attempt < PLAN_RETRIES:
                later.append((row, result))
                out.append(Planned(record=result.finding, outcome="retry", remediation=None,
                                   reason=f"{result.reason}; planned again in {plan_backoff(attempt):.0f} s"))
                continue
            if result.outcome == "error":
                retried = f" (after {attempt + 1} attempts)" if result.extra.get("transient") else ""
                rt.audit(None, "plan_error", row.source, finding=dict(result.finding), reason=result.reason + retried,
                         transient=bool(result.extra.get("transient")), attempts=attempt + 1)
            outcomes[row.finding_id] = None
            out.append(Planned(record=result.finding, outcome=result.outcome, remediation=None, reason=result.reason))
        with rt.store.batch():  # one commit on SQLite: the remediations, their audit and jobs, the inbox rows
            records = [opening_records(rt, opening.remediation, result.reason, actor=row.source,
                                       refusal=opening.refusal, received_at=row.received_at.isoformat(),
                                       **({"advice": list(result.advice)} if result.advice else {}))
                       for row, opening, result in batch]  # written with each remediation, atomically
            stored = rt.store.create_many([opening.remediation for _, opening, _ in batch],
                                          audits=records) if batch else []
            fresh: list[tuple[Remediation, Result]] = []
            for (row, opening, result), (held, created) in zip(batch, stored, strict=True):
                outcomes[row.finding_id] = held.id
                if not created and held.id == opening.remediation.id:
                    # this very reception was planned already (the job ran twice): nothing to open again
                    out.append(Planned(record=result.finding, outcome=result.outcome, remediation=held,
                                       reason=result.reason))
                    continue
                if not created:
                    why = f"remediation {held.id} is already open ({held.state.replace('_', ' ')})"
                    rt.audit(held.id, "finding_joined", row.source, finding_id=row.finding_id, reason=why,
                             kind=row.finding.get("kind"), severity=row.finding.get("severity"))
                    out.append(Planned(record=result.finding, outcome="duplicate", remediation=held, reason=why))
                    continue
                fresh.append((held, result))
                out.append(Planned(record=result.finding, outcome=result.outcome, remediation=held,
                                   reason=result.reason))
            rt.store.mark_planned(outcomes, at=rt.clock())
            if any(held.state == "pending_approval" for held, _ in fresh):  # before the automatic applies
                rt.enqueue(AnnounceJob(delivery=max(row.received_at for row, _, _ in batch).isoformat()),
                           delay=rt.settings.group_wait.total_seconds())
            for held, result in fresh:  # an apply queued after the rows are planned: the sweep queues one lost
                self._advise(opened(rt, held), result)
            if later:
                self._plan_later(later, attempt)
        return out

    def _siblings_waiting(self, delivery: datetime) -> bool:
        """Whether a finding of this delivery, or of one received within ``group_wait`` after it (its
        siblings in a storm), still waits to be planned."""
        span = self.rt.settings.group_wait + timedelta(microseconds=1)
        return bool(self.rt.store.waiting(received_before=delivery + span, received_after=delivery, limit=1))

    def _plan_later(self, later: Sequence[tuple[Inbound, Result]], attempt: int) -> None:
        """Queue the findings ARM answered "later" (5xx, 429, a timeout) in a plan job of their own,
        ``plan_backoff(attempt)`` seconds on; they stay waiting in the inbox meanwhile."""
        delay = plan_backoff(attempt)
        ids_ = [row.finding_id for row, _ in later]
        for chunk in plan_groups((row.finding_id, str(row.finding.get("resource_id") or "")) for row, _ in later):
            self.rt.enqueue(PlanJob(finding_ids=tuple(chunk), attempt=attempt + 1), delay=delay)
        self.rt.audit(None, "plan_retry", "worker", findings=len(ids_), attempt=attempt + 1, delay_seconds=delay,
                      reason=later[0][1].reason)

    def _bulk_state(self, rows: Sequence[Inbound]) -> StateReader | None:
        """The job's resources read from Resource Graph in bulk (None: no graph, or it failed: live reads)."""
        if self.rt.graph is None:
            return None
        from remediator.azure.graph import GraphState  # noqa: PLC0415

        bulk = GraphState(self.rt.state, self.rt.graph)
        try:
            bulk.prefetch([str(row.finding.get("resource_id", "")) for row in rows])
        except Exception as e:  # the graph is an optimisation: plan from live reads instead
            log.warning("bulk read from Resource Graph failed, reading each resource live: %s", error_line(e))
            return None
        return bulk

    def _plan_failed(self, finding_ids: Sequence[str], reason: str) -> None:
        rows = [row for row in self.rt.store.inbound(finding_ids) if row.waiting]
        for row in rows:
            self.rt.audit(None, "plan_failed", "worker", finding_id=row.finding_id, source=row.source, reason=reason)
        self.rt.store.mark_planned({row.finding_id: None for row in rows}, at=self.rt.clock())

    def announce(self, job: AnnounceJob | None = None) -> None:
        """Queue the messages of every request not yet announced (Slack has not confirmed its
        message), grouped by playbook and resource group: a digest (``post_digest``, up to
        ``DIGEST_MAX`` each, with a fresh ``digest_id``) for a group of at least ``storm_threshold``;
        the smaller groups of one playbook in one subscription that reach it together are one digest
        across their resource groups (a backlog of ten accounts in ten resource groups is one message,
        not ten: each post takes one of the channel's one-per-second slots); single ``post`` jobs
        otherwise. Only keys are read for the grouping. An announce queued by a plan job first waits
        (``_settling``) while other jobs still plan the rest of its delivery, so a delivery split into
        several plan jobs is grouped whole. A request already being posted (or waiting for its retry)
        is offered again harmlessly: the post jobs record their intent by compare-and-set and skip
        what another attempt holds (``remediator.lifecycle.posting``)."""
        rt = self.rt
        if rt.chat is None:
            return  # nothing to post with: the requests wait, listed, for a deployment with a chat
        if job is not None and self._settling(job):
            return
        found = rt.store.unannounced(limit=ANNOUNCE_MAX)
        threshold = max(rt.settings.storm_threshold, 2) if rt.settings.storm_threshold else 0
        with rt.store.batch():
            for (playbook, group), members in announce_groups(found, threshold):
                if len(members) == 1:
                    rt.enqueue(PostJob(remediation_id=members[0]))
                    continue
                for start in range(0, len(members), DIGEST_MAX):
                    chunk = tuple(members[start:start + DIGEST_MAX])
                    rt.enqueue(PostDigestJob(remediation_ids=chunk, playbook=playbook, group=group,
                                             digest_id=secrets.token_urlsafe(12)))
                    rt.audit(None, "digest_requested", "system", playbook=playbook, group=group,
                             remediations=len(chunk))
        if len(found) >= ANNOUNCE_MAX:
            rt.enqueue(AnnounceJob())

    def _settling(self, job: AnnounceJob) -> bool:
        """True (and the announce queued again ``ANNOUNCE_SETTLE_STEP`` later) while findings of the
        job's delivery, or of those within ``group_wait`` after it, still wait to be planned by other
        jobs (several workers plan one delivery at once), for at most ``ANNOUNCE_SETTLE_MAX`` from when
        it first waited; only one announce per delivery waits (a lock), the others end; an unreadable
        time announces at once."""
        if not job.delivery:
            return False
        rt = self.rt
        now = rt.clock()
        try:
            at = datetime.fromisoformat(job.delivery)
            since = datetime.fromisoformat(job.since) if job.since else now
        except ValueError:
            return False
        if now - since >= ANNOUNCE_SETTLE_MAX or not self._siblings_waiting(at):
            return False
        # one announce per delivery keeps looking (each look is a query and a job); the others leave the
        # delivery to it (it announces every request not yet announced, theirs too; a crash leaves them
        # to the sweep's announce)
        waiter = job.waiter or secrets.token_hex(8)
        if not rt.store.acquire_lock(f"announce:{job.delivery}", waiter, ANNOUNCE_SETTLE_STEP * 3):
            return True
        rt.enqueue(replace(job, since=since.isoformat(), waiter=waiter), delay=ANNOUNCE_SETTLE_STEP)
        return True

    # -- withdrawal ---------------------------------------------------------------------------
    def resolved(self, job: ResolvedJob) -> None:
        """Withdraw the pending requests of findings reported healthy (see the module docstring)."""
        if not job.signals:
            return
        wanted: dict[tuple[str, ...], str] = {}
        for signal in job.signals:
            key = signal.key()
            if key is not None:
                wanted[key] = signal.reason or "reported healthy"
        for rem in self.rt.store.list(states=("pending_approval",), limit=100_000):
            if rem.undo_of:
                continue
            for key in finding_keys(rem.finding):
                if key in wanted:
                    self.withdraw(rem, f"{job.source} reports it resolved: {wanted[key]}", actor=job.source)
                    break

    def withdraw(self, rem: Remediation, reason: str, *, actor: str) -> Remediation | None:
        """``pending_approval → withdrawn``: resolved outside remediator; nothing is written."""
        rt = self.rt
        new = rt.move(rem, "withdrawn", from_states=("pending_approval",), error=reason, updated_at=rt.clock(),
                      audit=rt.record(rem.id, "withdrawn", actor, reason=reason, finding_id=rem.finding_id,
                                      resource_id=rem.resource_id, reminded=rem.reminded))
        if new is None:
            return None
        rt.enqueue(UpdateJob(remediation_id=rem.id))
        rt.reply(new, "withdrawn", f"Resolved outside remediator ({reason}). The request is withdrawn; "
                                   "nothing was changed.")
        return new

    # -- chat -------------------------------------------------------------------------------
    def post(self, job: PostJob) -> None:
        self.poster.post(job)

    def post_digest(self, job: PostDigestJob) -> None:
        self.poster.post_digest(job)

    def update(self, job: UpdateJob) -> None:
        rem = self.rt.store.get(job.remediation_id)
        if self.rt.chat is None or rem is None or not rem.message.get("ts") or rem.message.get("digest"):
            return  # digest messages are not re-rendered per item; results go to their thread
        try:
            self.rt.chat.update_approval(rem)
        except ChatError as e:
            self._chat_failed(job, rem, e)

    def reply(self, job: ReplyJob, *, redelivered: bool = False) -> None:
        """Post a thread reply, tagged (``reply_key``); a remediation without an approval message (an
        auto-applied one) has its result listed in its playbook's results digest instead
        (``remediator.lifecycle.results``). When an earlier attempt may have landed (its
        answer was lost: ``unsure``; or the job is delivered again after a crash), the thread is read
        for the tag first: found, nothing is posted; the chat cannot tell, nothing is posted either
        (at most one reply: retried with backoff while that is transient, else given up, audited)."""
        rt = self.rt
        rem = rt.store.get(job.remediation_id)
        if rt.chat is None or rem is None:
            return
        if (thread_of(rem) is None or (rem.message.get("digest") and job.kind in DIGEST_RESULTS)) \
                and self.results.enabled():
            # no approval message of its own (automatic; or one of a digest, whose thread would get a reply per
            # member, each taking a posting second): its playbook's results digest, updated in place
            self.results.add(rem, job)
            return
        tag = MessageTag(kind="reply", key=reply_key(rem.id, job.kind, job.text))
        if job.unsure or redelivered:
            try:
                found = rt.chat.find_posted(tag, since=rem.created_at, thread=thread_of(rem))
            except ChatError as e:
                self._chat_failed(replace(job, unsure=True), rem, e, looking=True)
                return
            if found is not None:
                rt.audit(rem.id, "reply_found", "worker", kind=job.kind, ts=found.ts,
                         reason="the earlier reply landed although its answer was lost; not posted again")
                return
        try:
            rt.chat.post_result(rem, kind=job.kind, text=job.text, undo_available=job.undo_available, tag=tag)
        except ChatError as e:
            self._chat_failed(replace(job, unsure=job.unsure or e.maybe_done), rem, e)

    def _chat_failed(self, job: UpdateJob | ReplyJob, rem: Remediation, e: ChatError, *,
                     looking: bool = False) -> None:
        """A chat outage re-queues the job with backoff (``posting.backoff``) for up to ``CHAT_GIVE_UP``;
        a failure that retrying cannot mend, or one past that, ends it with an audited reason that
        says what failed, how often and for how long (``looking``: the look-up for a reply whose post
        may have landed failed, so it was not posted again)."""
        rt = self.rt
        now = rt.clock()
        try:
            first = datetime.fromisoformat(job.first_failed_at) if job.first_failed_at else now
        except ValueError:
            first = now
        attempts = job.attempts + 1
        if e.transient and now - first < CHAT_GIVE_UP:
            wait = backoff(attempts)
            log.warning("%s job for %s: %s (attempt %d); again in %.0fs", job.KIND, rem.id, e.what, attempts, wait)
            rt.enqueue(replace(job, attempts=attempts, first_failed_at=first.isoformat()), delay=wait)
            return
        span = (now - first).total_seconds()
        reason = f"{e.what} for {attempts} attempt{'s' if attempts != 1 else ''} over {span:.0f} s"
        if looking:
            reason += ("; an earlier post of the reply may have landed and the thread could not be read, so "
                       "it was not posted again")
        log.error("%s job for %s given up: %s", job.KIND, rem.id, reason)
        rt.audit(rem.id, "chat_failed", "worker", job=job.KIND, kind=getattr(job, "kind", None), reason=reason)

    def _advise(self, rem: Remediation, result: Result) -> None:
        """A plan that changes nothing but advises people (``alert.send-advice``): its notice, queued once."""
        rt = self.rt
        if not result.advice or rem.state != "no_change" or rt.chat is None:
            return
        # the same alert delivered again (an exporter re-sending it) is told once a day, not once per delivery
        day = rt.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        if rt.store.incr_counter(f"notice:{rem.finding_id}", day) > 1:
            rt.audit(rem.id, "notice_skipped", "worker", reason="this alert was already told to the channel today")
            return
        rt.enqueue(NoticeJob(remediation_id=rem.id, lines=result.advice[:NOTICE_LINES]))

    def notice(self, job: NoticeJob) -> None:
        """Post the advice of a remediation that changes nothing, once: an attempt whose answer was lost
        (``maybe_done``) is looked for in the channel (its ``notice`` tag) before posting again; a
        history that cannot be read posts nothing more (audited ``post_outcome_unknown``); an outage
        re-queues with backoff for up to ``CHAT_GIVE_UP``."""
        rt = self.rt
        rem = rt.store.get(job.remediation_id)
        if rt.chat is None or rem is None:
            return
        tag = MessageTag(kind="notice", key=rem.id)
        try:
            ref = rt.chat.find_posted(tag, since=rem.created_at) if job.maybe_posted else None
        except ChatError as e:
            rt.audit(rem.id, "post_outcome_unknown", "worker", job=job.KIND, reason=e.what)
            return
        found = ref is not None
        try:
            ref = ref or rt.chat.post_notice(rem, lines=job.lines)
        except ChatError as e:
            job = replace(job, maybe_posted=job.maybe_posted or e.maybe_done)
            self._notice_failed(job, rem, e)
            return
        rt.audit(rem.id, "notice_posted", "worker", channel=ref.channel, ts=ref.ts, found=found,
                 lines=len(job.lines))

    def _notice_failed(self, job: NoticeJob, rem: Remediation, e: ChatError) -> None:
        rt = self.rt
        now = rt.clock()
        try:
            first = datetime.fromisoformat(job.first_failed_at) if job.first_failed_at else now
        except ValueError:
            first = now
        attempts = job.attempts + 1
        if e.transient and now - first < CHAT_GIVE_UP:
            rt.enqueue(replace(job, attempts=attempts, first_failed_at=first.isoformat()), delay=backoff(attempts))
            return
        span = (now - first).total_seconds()
        rt.audit(rem.id, "chat_failed", "worker", job=job.KIND,
                 reason=f"{e.what} for {attempts} attempt{'s' if attempts != 1 else ''} over {span:.0f} s")

    def alarm(self, job: AlarmJob) -> None:
        """Post a message about remediator itself once, as ``notice`` posts advice: an attempt whose answer was
        lost is looked for (its ``alarm`` tag) before posting again; an outage re-queues with backoff for up to
        ``CHAT_GIVE_UP``; each outcome is audited (``alarm_posted``, ``chat_failed``)."""
        rt = self.rt
        if rt.chat is None:
            return
        tag = MessageTag(kind="alarm", key=job.key)
        try:
            ref = rt.chat.find_posted(tag, since=rt.clock() - CHAT_GIVE_UP) if job.maybe_posted else None
        except ChatError as e:
            rt.audit(None, "post_outcome_unknown", "worker", job=job.KIND, key=job.key, reason=e.what)
            return
        found = ref is not None
        try:
            ref = ref or rt.chat.post_alarm(key=job.key, title=job.title, lines=job.lines)
        except ChatError as e:
            now = rt.clock()
            first = _when(job.first_failed_at) or now
            attempts = job.attempts + 1
            if e.transient and now - first < CHAT_GIVE_UP:
                rt.enqueue(replace(job, attempts=attempts, first_failed_at=first.isoformat(),
                                   maybe_posted=job.maybe_posted or e.maybe_done), delay=backoff(attempts))
                return
            rt.audit(None, "chat_failed", "worker", job=job.KIND, key=job.key,
                     reason=f"{e.what} for {attempts} attempt{'s' if attempts != 1 else ''}")
            return
        rt.audit(None, "alarm_posted", "worker", key=job.key, channel=ref.channel, ts=ref.ts, found=found)

    def resume(self) -> None:
        for rem in self.rt.store.list(states=("approved",), limit=10_000):
            self.rt.enqueue(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint, asked=bool(rem.votes)))


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _guarded(what: str, step: Callable[[], object]) -> bool:
    """Run one step of ending a poison job: True when it ran, False (logged with ``what``) when it raised."""
    try:
        step()
    except Exception:
        log.exception("poison job: %s failed; ending the job all the same", what)
        return False
    return True


def announce_groups(found: Sequence[tuple[str, str]], threshold: int) -> list[tuple[tuple[str, str], list[str]]]:
    """The unannounced requests (``(id, dedup_key)``, oldest first) as ``((playbook, group), ids)``: a
    group of one is a single post, more is a digest. ``threshold`` 0: no digests. Otherwise a
    playbook's requests in one resource group are a digest when there are ``threshold`` or more; the
    rest of that playbook in one subscription, over several resource groups, are one digest when
    together they reach ``threshold`` (``group`` then names the subscription); an undo is always
    single. ``group`` is the resource group, or ``(subscription)`` for subscription-level resources."""
    out: list[tuple[tuple[str, str], list[str]]] = []
    by_group: dict[tuple[str, str, str], list[str]] = defaultdict(list)  # (playbook, subscription, group)
    for rid, key in found:
        playbook, _, resource = key.partition("|")
        if playbook == "undo" or not threshold:
            out.append(((playbook, ""), [rid]))
            continue
        parsed = ids.parse(resource)
        by_group[(playbook, (parsed.subscription_id or "").lower(), parsed.resource_group or "")].append(rid)
    leftovers: dict[tuple[str, str], list[tuple[str, list[str]]]] = defaultdict(list)
    for (playbook, sub, group), members in by_group.items():
        if len(members) >= threshold:
            out.append(((playbook, group or "(subscription)"), members))
        else:
            leftovers[(playbook, sub)].append((group, members))
    for (playbook, sub), parts in leftovers.items():
        pooled = [rid for _, members in parts for rid in members]
        if len(parts) > 1 and len(pooled) >= threshold:
            out.append(((playbook, f"{len(parts)} resource groups of subscription {sub}"), pooled))
            continue
        out.extend(((playbook, group or "(subscription)"), [rid]) for group, members in parts for rid in members)
    return out
