"""The worker: queued jobs → chat messages and applies; plus the runtime both halves share.

Job kinds (``Job.kind`` → payload):

``plan``         ``{finding_ids}``: plan received findings (``Worker.plan_findings``), open remediations
``announce``     ``{}``: hand every request not yet announced to ``post``/``post_digest`` jobs, grouped
``post``         ``{remediation_id}``: post the approval request, store its message ref
``post_digest``  ``{remediation_ids, playbook, group}``: one message for a storm (see ``Worker.announce``)
``update``       ``{remediation_id}``: re-render the approval message in place
``reply``        ``{remediation_id, kind, text, undo_available}``: a result in the message's thread
``apply``        ``{remediation_id, fingerprint}``: lock, re-plan, compare, elevate, apply, verify
``resume``       ``{}``: after ``/remediate resume``, enqueue ``apply`` for every approved remediation
``resolved``     ``{signals, source}``: findings reported healthy (a Healthy assessment, a resolved alert, a
                 Compliant policy state): their pending requests are ``withdrawn`` (``Worker.resolved``)

Withdrawal (``Worker.withdraw``; by ``resolved`` jobs and by ``Engine.reconcile`` after a scan): a
``pending_approval`` request (reminded or not) whose finding is healthy now moves to ``withdrawn``
(compare-and-set: an approval that won the race stands, and the apply's re-plan then ends it
``no_change``), its message is re-rendered without buttons ("resolved outside remediator"), the
thread says why, the audit records the reason; nothing is written to ARM.

Apply, step by step (``Worker.apply``):

1. Skip unless the remediation is ``approved`` (or ``applying``: a crashed earlier delivery) and the
   job's fingerprint is the approved one. Paused: leave it ``approved`` (``resume`` re-enqueues).
2. Lock the finding's resource and every changed resource (``acquire_lock`` with ``lock_ttl``, in
   sorted order); a busy lock re-enqueues the job with a short delay.
3. Re-check the recorded approvals (an approver removed from the group since the click no longer
   counts; a directory failure retries the job later), then re-read state and re-plan with the
   same finding through the ``Planner``:
   same playbook and fingerprint → apply; no changes → ``no_change``; exempt now → ``exempt``;
   a different plan → ``stale`` and a **new** remediation (new id, so old buttons cannot approve
   the new plan) asks again, through the normal decision; the stale one gives up its dedup slot.
   An undo is checked differently: every original change must still verify (the resource still
   holds what remediator wrote), otherwise the undo is ``stale`` and is not re-asked.
4. ``approved → applying`` (compare-and-set: a loser stops), then per change: ``elevate`` →
   ``apply`` through ``Elevator.run`` (which retries role propagation) → ``release`` (in
   ``finally``) → ``verify``; each grant and release is audited. Any exception →
   ``failed`` with a one-line reason and a reply; never ``applied``.
5. ``applying → applied``; the reply says "applied and verified", with Undo when every action is
   reversible and the undo window is open. An applied undo moves the original to ``rolled_back``.

Crash recovery: a delivery that finds ``applying`` (its lock free or expired) re-plans. If the
first run wrote everything, the plan is empty and the approved changes all verify → ``applied``
(audited as recovered), with no second write; if they do not verify, someone else fixed it →
``no_change``; if the first run wrote only some changes, the remainder is a different plan →
``stale`` and a human approves the rest. A job delivered more than ``max_deliveries`` times is
poison: its remediation becomes ``failed``; a poison ``plan`` job's findings are marked planned
with nothing opened, and audited (``plan_failed``) with the reason.

Planning (``Worker.plan_findings``) reads the findings' rows from the inbox (only those still
waiting: a redelivered job, or one the sweep re-queued, plans nothing twice), plans them through
the ``Planner``, creates their remediations in one ``create_many`` (the dedup index decides, as
ever), audits them, marks the rows planned and, when it opened requests, queues ``announce``
``group_wait`` later. A state read that raises fails the whole job, which is retried.

Bulk state: when the runtime has a Resource Graph (``Runtime.graph``), a plan job first reads the
resources of all its findings in bulk (``remediator.azure.graph.GraphState``) and plans from those
documents; anything else it needs is read live. Apply never uses them: ``_check_plan`` re-reads live.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from remediator import ids, telemetry
from remediator.actions import REGISTRY
from remediator.actions.change import Change
from remediator.azure.clients import ArmClients
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.errors import ActionError, VerifyError
from remediator.findings.model import Finding, FindingKind, Severity
from remediator.lifecycle.approval import Directory, approvals, is_member, terms, when
from remediator.lifecycle.chat import ChatPort, MessageRef, ResultKind
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Remediation, State
from remediator.lifecycle.store import Store
from remediator.planning.planner import Planner
from remediator.planning.result import Result
from remediator.playbooks import Exemptions, Playbook, PlaybookSet
from remediator.privilege.elevation import Elevator

if TYPE_CHECKING:
    from remediator.azure.graph import Graph

log = logging.getLogger("remediator.worker")

PAUSE_FLAG = "paused"
LOCK_RETRY_SECONDS = 5.0
CAS_RETRIES = 8
MAX_REASKS = 3  # a plan that keeps drifting is asked again at most this often (``attempt`` counts)
RESOLVED: tuple[State, ...] = ("approved", "applying")
PLAN_CHUNK = 500  # findings per plan job (one bulk Resource Graph read covers the job's resources)
PLAN_CHUNK_BYTES = 24_000  # and at most this many bytes of finding ids (a queue message holds 48 KiB of JSON)
DIGEST_MAX = 500  # remediations per digest message (a queue message stays far below 64 KB)
ANNOUNCE_MAX = 50_000  # request keys one announce job reads; more are left to the next one it queues


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


@dataclass(frozen=True, kw_only=True)
class Planned:
    """What planning did with one received finding."""

    record: Mapping[str, str | None]  # the finding summary: id, kind, type, resource_id
    outcome: str  # changes, no_changes, exempt, no_match, error, or "duplicate" (it joined an open remediation)
    remediation: Remediation | None
    reason: str


# --------------------------------------------------------------------------------------------
# Values stored in a remediation


def finding_to_json(f: Finding) -> dict[str, Any]:
    """Everything a re-plan needs (all but ``raw``); ``severity`` as its label."""
    return {
        "id": f.id, "kind": f.kind, "type": f.type, "title": f.title, "severity": f.severity.label,
        "status": f.status, "resource_id": f.resource_id, "subscription_id": f.subscription_id,
        "resource_group": f.resource_group, "resource_type": f.resource_type, "source": f.source,
        "description": f.description, "principal_id": f.principal_id,
        "policy_definition_id": f.policy_definition_id, "policy_assignment_id": f.policy_assignment_id,
        "extended_properties": dict(f.extended_properties), "additional_data": dict(f.additional_data),
        "entities": [dict(e) for e in f.entities],
    }


def finding_from_json(m: Mapping[str, Any]) -> Finding:
    def opt(key: str) -> str | None:
        value = m.get(key)
        return None if value is None else str(value)

    return Finding(
        id=str(m["id"]), kind=cast(FindingKind, m["kind"]), type=str(m["type"]), title=str(m.get("title", "")),
        severity=Severity.parse(m.get("severity")), status=str(m.get("status", "")),
        resource_id=str(m["resource_id"]), subscription_id=opt("subscription_id"),
        resource_group=opt("resource_group"), resource_type=str(m.get("resource_type", "")),
        source=str(m.get("source", "")), description=str(m.get("description", "")),
        principal_id=opt("principal_id"), policy_definition_id=opt("policy_definition_id"),
        policy_assignment_id=opt("policy_assignment_id"),
        extended_properties=dict(m.get("extended_properties") or {}),
        additional_data=dict(m.get("additional_data") or {}),
        entities=tuple(dict(e) for e in m.get("entities") or ()),
    )


def change_to_json(c: Change) -> dict[str, Any]:
    return {**c.to_json(), "note": c.note}


def change_from_json(m: Mapping[str, Any]) -> Change:
    before, after = m.get("before"), m.get("after")
    return Change(action=str(m["action"]), resource_id=str(m["resource_id"]), operation=m["operation"],
                  before=dict(before) if before is not None else None,
                  after=dict(after) if after is not None else None, note=str(m.get("note", "")))


def dedup_key(playbook: str, resource_id: str) -> str:
    return f"{playbook}|{ids.key(resource_id)}"


def one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:1000] or type(exc).__name__


# --------------------------------------------------------------------------------------------
# The runtime: dependencies plus the helpers ingest, approval and the worker share


@dataclass(kw_only=True)
class Runtime:
    store: Store
    settings: Settings
    playbooks: PlaybookSet
    state: StateReader
    clients: ArmClients
    elevator: Elevator
    clock: Callable[[], datetime]
    chat: ChatPort | None = None
    directory: Directory | None = None
    exemptions: Exemptions | None = None
    graph: Graph | None = None  # Resource Graph for bulk state reads when planning (None: one read each)
    _refusals: dict[str, str] = field(default_factory=dict)  # dedup key → why build() asked a human

    def audit(self, remediation_id: str | None, event: str, actor: str, **detail: Any) -> None:
        self.store.audit(AuditEvent(remediation_id=remediation_id, event=event, actor=actor, at=self.clock(),
                                    detail=detail))

    def enqueue(self, job_kind: str, /, *, delay: float = 0, **payload: Any) -> None:
        self.store.enqueue(Job(kind=job_kind, payload=payload), delay_seconds=delay)

    def reply(self, rem: Remediation, kind: ResultKind, text: str, *, undo_available: bool = False) -> None:
        """Queue a thread reply. ``text`` is plain text (the chat escapes it); it may hold ARM errors."""
        self.enqueue("reply", remediation_id=rem.id, kind=kind, text=text, undo_available=undo_available)

    def planner(self, state: StateReader | None = None) -> Planner:
        return Planner(playbooks=self.playbooks, state=state or self.state, exemptions=self.exemptions,
                       protected_principals=self.settings.protected_principals, today=self.clock().date())

    def paused(self) -> bool:
        return self.store.get_flag(PAUSE_FLAG) is not None

    def move(self, rem: Remediation, to: State, *, from_states: Sequence[State], **updates: Any) -> Remediation | None:
        """Compare-and-set that re-reads on a lost race (a concurrent field update such as a message
        ref), giving up once the state is no longer one of ``from_states``."""
        current: Remediation | None = rem
        for _ in range(CAS_RETRIES):
            if current is None or current.state not in from_states:
                return None
            new = self.store.transition(current, to, from_states=from_states, **updates)
            if new is not None:
                return new
            current = self.store.get(rem.id)
        return None

    def set_fields(self, rem: Remediation, **updates: Any) -> Remediation | None:
        current: Remediation | None = rem
        for _ in range(CAS_RETRIES):
            if current is None:
                return None
            new = self.store.update(current, **updates)
            if new is not None:
                return new
            current = self.store.get(rem.id)
        return None

    # -- telemetry (remediator.telemetry: a no-op unless configured) -------------------------
    def ended(self, rem: Remediation) -> None:
        """Count a remediation that reached a final state (and its time to remediate when applied)."""
        tel = telemetry.current()
        if not tel.enabled:
            return
        tel.remediation_ended(rem.state, rem.playbook)
        if rem.state == "applied":
            tel.time_to_remediate((self.clock() - rem.created_at).total_seconds(), rem.playbook)

    def traced_approval(self, rem: Remediation, **attributes: Any) -> None:
        """The approval span of a remediation just approved, and how long it waited for it."""
        tel = telemetry.current()
        if not tel.enabled:
            return
        with tel.span("remediator.approval", parent=rem.trace_context, remediation_id=rem.id,
                      playbook=rem.playbook, resource=rem.resource_id, decision="approved", **attributes):
            tel.approval_wait((self.clock() - rem.created_at).total_seconds(), rem.playbook)

    # -- opening remediations ---------------------------------------------------------------
    def build(self, finding: Finding, result: Result, *, attempt: int = 0,
              trace_context: str | None = None) -> Remediation:
        """The remediation a planned ``result`` opens: ``exempt``/``no_change`` (final, no dedup
        slot), ``pending_approval`` for Slack playbooks and for auto ones that may not apply now, and
        ``approved`` for auto ones within the hourly budget. The budget is counted here, before the
        store deduplicates: a duplicate may use up a slot it does not apply (the safe direction)."""
        now = self.clock()
        playbook = self.playbooks.get(result.playbook or "")
        state: State
        if result.outcome == "exempt":
            state = "exempt"
        elif result.outcome == "no_changes":
            state = "no_change"
        elif playbook is not None and playbook.approval.mode == "slack":
            state = "pending_approval"
        elif (why := self.auto_refusal(playbook, result.risk, finding.subscription_id, count=True)) is not None:
            state = "pending_approval"  # an auto playbook that cannot auto-apply now: ask the admins at once
            self._refusals[dedup_key(result.playbook or "", finding.resource_id)] = why
        else:
            state = "approved"  # decided at once: one write, no planned → approved transition
        fallback = playbook is None or playbook.approval.mode != "slack"
        approvers, quorum = terms(playbook, self.settings, fallback=fallback) if state == "pending_approval" \
            else ((), 1)
        expires = now + playbook.approval.expires_after if state == "pending_approval" and playbook else None
        return Remediation(
            id=secrets.token_urlsafe(16), dedup_key=dedup_key(result.playbook or "", finding.resource_id),
            finding_id=finding.id, finding=finding_to_json(finding), playbook=result.playbook or "",
            risk=result.risk or (playbook.risk if playbook else "high"), resource_id=finding.resource_id,
            subscription_id=finding.subscription_id, state=state,
            changes=[change_to_json(c) for c in result.changes], fingerprint=result.fingerprint,
            approvers=approvers, quorum=quorum, created_at=now, updated_at=now, expires_at=expires, attempt=attempt,
            trace_context=trace_context, warnings=tuple(result.warnings),
        )

    def opened(self, rem: Remediation, reason: str, *, actor: str, **detail: Any) -> Remediation:
        """Audit a freshly created remediation and take the auto decision for ``planned`` ones."""
        event = {"exempt": "exempt", "no_change": "no_change", "pending_approval": "approval_requested"}.get(
            rem.state, "planned")
        playbook = self.playbooks.get(rem.playbook)
        if rem.state == "pending_approval" and playbook is not None and playbook.approval.mode == "auto":
            # asked at once (paused, auto off, not low risk): the audited reason is why it asks
            detail = {**detail, "plan": reason, "approvers": list(rem.approvers), "quorum": rem.quorum}
            reason = self._refusals.pop(rem.dedup_key, "") or self.auto_refusal(playbook, rem.risk) or reason
        if rem.warnings:  # what the plan could not check: part of what was asked (or auto-approved)
            detail = {**detail, "warnings": list(rem.warnings)}
        self.audit(rem.id, event, actor, playbook=rem.playbook, finding_id=rem.finding_id,
                   resource_id=rem.resource_id, fingerprint=rem.fingerprint, changes=len(rem.changes),
                   reason=reason, controls=list(playbook.controls) if playbook else [], **detail)
        if rem.state == "approved":
            self.audit(rem.id, "approved", "auto", fingerprint=rem.fingerprint, risk=rem.risk)
            self.traced_approval(rem, mode="auto")
            self.enqueue("apply", remediation_id=rem.id, fingerprint=rem.fingerprint)
        elif rem.state in ("exempt", "no_change"):
            self.ended(rem)
        return rem

    def auto_refusal(self, playbook: Playbook | None, risk: str | None, subscription_id: str | None = None, *,
                     count: bool = False) -> str | None:
        """Why an ``approval: auto`` remediation must ask a human (not low risk, paused, auto off,
        and with ``count`` the subscription's hourly budget, counting this one), or None."""
        if playbook is None or playbook.approval.mode != "auto" or risk != "low":
            return "only low-risk playbooks with approval: auto are applied without asking"
        if self.paused():
            return "auto-remediation is paused"
        budget = self.settings.auto_budget_per_hour
        if budget <= 0:
            return "auto-remediation is off (auto_budget_per_hour is 0)"
        if not count:
            return None
        window = self.clock().replace(minute=0, second=0, microsecond=0)
        if self.store.incr_counter(f"auto:{(subscription_id or '-').lower()}", window) > budget:
            return (f"the auto-remediation budget of {budget} per hour for subscription "
                    f"{subscription_id or '(none)'} is spent")
        return None

# --------------------------------------------------------------------------------------------
# Verdicts of the pre-apply check


@dataclass(frozen=True, slots=True)
class _Go:
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class _End:
    state: State
    reason: str
    reask: Result | None = None
    events: tuple[str, ...] = field(default=())


class Worker:
    """Handles one job at a time; see the module docstring."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._handlers: dict[str, Callable[[Mapping[str, Any]], None]] = {
            "plan": self.plan, "announce": self.announce, "post": self.post, "post_digest": self.post_digest,
            "update": self.update, "reply": self.reply,
            "apply": self.apply, "resume": self.resume, "resolved": self.resolved,
        }

    def handle(self, job: Job) -> None:
        if job.dequeue_count > self.rt.settings.max_deliveries:
            self.poison(job)
            return
        handler = self._handlers.get(job.kind)
        if handler is None:
            log.error("dropping job %s of unknown kind %r", job.id, job.kind)
            self.rt.audit(None, "job_dropped", "worker", kind=job.kind, reason="unknown job kind")
            return
        handler(job.payload)

    def poison(self, job: Job) -> None:
        reason = (f"gave up after {job.dequeue_count} deliveries of the {job.kind} job "
                  "(the worker crashed or timed out each time)")
        log.error("poison job %s: %s", job.id, reason)
        if job.kind == "plan":
            self._plan_failed([str(i) for i in job.payload.get("finding_ids") or ()], reason)
            return
        rid = job.payload.get("remediation_id")
        rem = self.rt.store.get(str(rid)) if rid else None
        if job.kind == "apply" and rem is not None:
            self._fail(rem, reason)
        else:
            self.rt.audit(rem.id if rem else None, "job_dropped", "worker", kind=job.kind, reason=reason)

    # -- planning ---------------------------------------------------------------------------
    def plan(self, p: Mapping[str, Any]) -> None:
        self.plan_findings([str(i) for i in p["finding_ids"]])

    def plan_findings(self, finding_ids: Sequence[str]) -> list[Planned]:
        rt = self.rt
        rows = [row for row in rt.store.inbound(finding_ids) if row.waiting]
        if not rows:
            return []
        planner = rt.planner(self._bulk_state(rows))
        out: list[Planned] = []
        outcomes: dict[str, str | None] = {}
        batch: list[tuple[Inbound, Remediation, Result]] = []
        tel = telemetry.current()
        for row in rows:
            finding = finding_from_json(row.finding)
            trace = row.finding.get("traceparent") if tel.enabled else None
            with tel.span("remediator.plan", parent=trace, finding_id=finding.id,
                          resource=finding.resource_id) as span:
                result = planner.plan_one(finding)
                span.set(outcome=result.outcome, playbook=result.playbook)
                if result.outcome in ("changes", "no_changes", "exempt"):
                    rem = rt.build(finding, result, trace_context=str(trace) if trace else span.traceparent)
                    span.set(remediation_id=rem.id)
                    batch.append((row, rem, result))
                    continue
            if result.outcome == "error":
                rt.audit(None, "plan_error", row.source, finding=dict(result.finding), reason=result.reason)
            outcomes[row.finding_id] = None
            out.append(Planned(record=result.finding, outcome=result.outcome, remediation=None, reason=result.reason))
        with rt.store.batch():  # one commit on SQLite: the remediations, their audit and jobs, the inbox rows
            stored = rt.store.create_many([rem for _, rem, _ in batch]) if batch else []
            asked = False
            for (row, _, result), (held, created) in zip(batch, stored, strict=True):
                outcomes[row.finding_id] = held.id
                if not created:
                    why = f"remediation {held.id} is already open ({held.state.replace('_', ' ')})"
                    rt.audit(held.id, "finding_joined", row.source, finding_id=row.finding_id, reason=why,
                             kind=row.finding.get("kind"), severity=row.finding.get("severity"))
                    out.append(Planned(record=result.finding, outcome="duplicate", remediation=held, reason=why))
                    continue
                got = rt.opened(held, result.reason, actor=row.source, received_at=row.received_at.isoformat())
                asked = asked or got.state == "pending_approval"
                out.append(Planned(record=result.finding, outcome=result.outcome, remediation=got,
                                   reason=result.reason))
            rt.store.mark_planned(outcomes, at=rt.clock())
            if asked:
                rt.enqueue("announce", delay=rt.settings.group_wait.total_seconds())
        return out

    def _bulk_state(self, rows: Sequence[Inbound]) -> StateReader | None:
        """The job's resources read from Resource Graph in bulk (None: no graph, or it failed: live reads)."""
        if self.rt.graph is None:
            return None
        from remediator.azure.graph import GraphState  # noqa: PLC0415

        bulk = GraphState(self.rt.state, self.rt.graph)
        try:
            bulk.prefetch([str(row.finding.get("resource_id", "")) for row in rows])
        except Exception as e:  # the graph is an optimisation: plan from live reads instead
            log.warning("bulk read from Resource Graph failed, reading each resource live: %s", one_line(e))
            return None
        return bulk

    def _plan_failed(self, finding_ids: Sequence[str], reason: str) -> None:
        rows = [row for row in self.rt.store.inbound(finding_ids) if row.waiting]
        for row in rows:
            self.rt.audit(None, "plan_failed", "worker", finding_id=row.finding_id, source=row.source, reason=reason)
        self.rt.store.mark_planned({row.finding_id: None for row in rows}, at=self.rt.clock())

    def announce(self, _p: Mapping[str, Any]) -> None:
        """Queue the messages of every request not yet announced, grouped by playbook and resource
        group: a digest (``post_digest``, up to ``DIGEST_MAX`` each) for a group of at least
        ``storm_threshold``, single ``post`` jobs otherwise. Only keys are read for the grouping;
        each chunk is claimed (``claim_announced``: two announcers never both take a request)
        before its job is queued, in one transaction on SQLite."""
        rt = self.rt
        found = rt.store.unannounced(limit=ANNOUNCE_MAX)
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for rid, key in found:
            playbook, _, resource = key.partition("|")
            groups[(playbook, ids.parse(resource).resource_group or "")].append(rid)
        threshold = rt.settings.storm_threshold
        for (playbook, group), members in groups.items():
            for start in range(0, len(members), DIGEST_MAX):
                with rt.store.batch():
                    claimed = rt.store.claim_announced(members[start:start + DIGEST_MAX])
                    if not threshold or len(members) < threshold or len(claimed) < min(threshold, 2):
                        for rid in claimed:
                            rt.enqueue("post", remediation_id=rid)
                        continue
                    rt.enqueue("post_digest", remediation_ids=claimed, playbook=playbook,
                               group=group or "(subscription)")
                    rt.audit(None, "digest_requested", "system", playbook=playbook, group=group,
                             remediations=len(claimed))
        if len(found) >= ANNOUNCE_MAX:
            rt.enqueue("announce")

    # -- withdrawal ---------------------------------------------------------------------------
    def resolved(self, p: Mapping[str, Any]) -> None:
        """Withdraw the pending requests of findings reported healthy (see the module docstring)."""
        signals = [s for s in p.get("signals") or () if isinstance(s, Mapping)]
        if not signals:
            return
        wanted: dict[tuple[str, ...], str] = {}
        for s in signals:
            reason = str(s.get("reason") or "reported healthy")
            if s.get("kind") == "alert" and s.get("id"):
                wanted[("alert", str(s["id"]).lower())] = reason
            elif s.get("resource_id") and s.get("type"):
                key: tuple[str, ...] = (str(s.get("kind") or ""), str(s["type"]).lower(),
                                        ids.key(str(s["resource_id"])))
                if s.get("principal_id"):
                    wanted[(*key, str(s["principal_id"]).lower())] = reason
                else:
                    wanted[key] = reason
        actor = str(p.get("source") or "defender")
        for rem in self.rt.store.list(states=("pending_approval",), limit=100_000):
            if rem.undo_of:
                continue
            for key in finding_keys(rem.finding):
                if key in wanted:
                    self.withdraw(rem, f"{actor} reports it resolved: {wanted[key]}", actor=actor)
                    break

    def withdraw(self, rem: Remediation, reason: str, *, actor: str) -> Remediation | None:
        """``pending_approval → withdrawn``: resolved outside remediator; nothing is written."""
        rt = self.rt
        new = rt.move(rem, "withdrawn", from_states=("pending_approval",), error=reason, updated_at=rt.clock())
        if new is None:
            return None
        rt.audit(rem.id, "withdrawn", actor, reason=reason, finding_id=rem.finding_id, resource_id=rem.resource_id,
                 reminded=rem.reminded)
        rt.enqueue("update", remediation_id=rem.id)
        rt.reply(new, "withdrawn", f"Resolved outside remediator ({reason}). The request is withdrawn; "
                                   "nothing was changed.")
        return new

    # -- chat -------------------------------------------------------------------------------
    def post(self, p: Mapping[str, Any]) -> None:
        rem = self.rt.store.get(str(p["remediation_id"]))
        chat = self.rt.chat
        if chat is None or rem is None or rem.state != "pending_approval" or rem.message:
            return  # nothing to post, or posted already (a redelivery after the post)
        ref = chat.post_approval(rem)
        self._store_ref(rem, ref)

    def post_digest(self, p: Mapping[str, Any]) -> None:
        chat = self.rt.chat
        rems = [r for r in (self.rt.store.get(str(i)) for i in p["remediation_ids"])
                if r is not None and r.state == "pending_approval" and not r.message]
        if chat is None or not rems:
            return
        ref = chat.post_digest(rems, playbook=str(p["playbook"]), group=str(p["group"]))
        for rem in rems:
            self._store_ref(rem, ref, digest=True)

    def _store_ref(self, rem: Remediation, ref: MessageRef, *, digest: bool = False) -> None:
        message = {"channel": ref.channel, "ts": ref.ts}
        if digest:
            message["digest"] = "1"  # the message is shared by the storm's remediations
        self.rt.set_fields(rem, message=message)

    def update(self, p: Mapping[str, Any]) -> None:
        rem = self.rt.store.get(str(p["remediation_id"]))
        if self.rt.chat is None or rem is None or not rem.message or rem.message.get("digest"):
            return  # digest messages are not re-rendered per item; results go to their thread
        self.rt.chat.update_approval(rem)

    def reply(self, p: Mapping[str, Any]) -> None:
        rem = self.rt.store.get(str(p["remediation_id"]))
        if self.rt.chat is None or rem is None:
            return
        self.rt.chat.post_result(rem, kind=cast(ResultKind, p["kind"]), text=str(p["text"]),
                                 undo_available=bool(p.get("undo_available", False)))

    def resume(self, _p: Mapping[str, Any]) -> None:
        for rem in self.rt.store.list(states=("approved",), limit=10_000):
            self.rt.enqueue("apply", remediation_id=rem.id, fingerprint=rem.fingerprint)

    # -- apply ------------------------------------------------------------------------------
    def apply(self, p: Mapping[str, Any]) -> None:
        rt = self.rt
        rem = rt.store.get(str(p["remediation_id"]))
        if rem is None or rem.state not in RESOLVED:
            return
        if p.get("fingerprint") != rem.fingerprint:
            rt.audit(rem.id, "apply_skipped", "worker", reason="the job is for another plan")
            return
        if rt.paused():
            rt.audit(rem.id, "apply_deferred", "worker", reason="remediation is paused; resume applies it")
            return
        keys = sorted({"resource:" + ids.key(rem.resource_id)}
                      | {"resource:" + ids.key(str(c["resource_id"])) for c in rem.changes})
        owner = f"worker:{uuid.uuid4().hex}"
        ttl = rt.settings.lock_ttl.total_seconds()
        taken: list[str] = []
        try:
            for key in keys:
                if not rt.store.acquire_lock(key, owner, ttl):
                    rt.enqueue("apply", delay=LOCK_RETRY_SECONDS, **p)
                    return
                taken.append(key)
            self._apply_locked(rem.id)
        finally:
            for key in taken:
                rt.store.release_lock(key, owner)

    def _apply_locked(self, rid: str) -> None:
        rt = self.rt
        rem = rt.store.get(rid)
        if rem is None or rem.state not in RESOLVED:
            return
        recovering = rem.state == "applying"
        revoked = self._approval_revoked(rem)  # MembershipUnknown propagates: the job is retried later
        if revoked is not None:
            self._fail(rem, revoked)
            return
        try:
            verdict = self._check_undo(rem, recovering) if rem.undo_of else self._check_plan(rem, recovering)
        except Exception as e:  # a failed state read: loud, nothing written
            log.exception("pre-apply check of %s failed", rem.id)
            verdict = _End("failed", f"could not re-check the resource before applying: {one_line(e)}")
        if isinstance(verdict, _End):
            self._end(rem, verdict)
            return
        if not recovering:
            moved = rt.move(rem, "applying", from_states=("approved",))
            if moved is None:
                return  # someone else is applying it
            rem = moved
        rt.audit(rem.id, "applying", "worker", fingerprint=rem.fingerprint, changes=len(verdict.changes),
                 elevation=rt.elevator.strategy, recovered=recovering)
        with telemetry.current().span("remediator.apply", parent=rem.trace_context, remediation_id=rem.id,
                                      playbook=rem.playbook, resource=rem.resource_id,
                                      changes=len(verdict.changes)) as span:
            try:
                for change in verdict.changes:
                    self._apply_one(rem, change)
            except Exception as e:  # every failure is loud: failed, with the reason, never applied
                if not isinstance(e, ActionError):
                    log.exception("apply of %s failed", rem.id)
                span.error(one_line(e))
                self._fail(rem, one_line(e))
                return
            self._applied(rem, "applied and verified")

    def _approval_revoked(self, rem: Remediation) -> str | None:
        """Re-check the recorded approvals just before writing (time of check vs. time of use): an
        approver removed from the playbook's list or user group, or from the global narrowing list,
        since they clicked no longer counts. Automatic approvals carry no votes and are not re-checked."""
        votes = approvals(rem)
        if not votes:
            return None
        settings, directory = self.rt.settings, self.rt.directory
        gone = [v.user_id for v in votes
                if not is_member(v.user_id, rem.approvers, directory)
                or (settings.approvers and not is_member(v.user_id, settings.approvers, directory))]
        if len(votes) - len(gone) >= rem.quorum:
            return None
        return (f"the approval no longer holds: {', '.join(gone)} "
                f"{'is' if len(gone) == 1 else 'are'} no longer allowed to approve it; nothing was applied")

    def _apply_one(self, rem: Remediation, change: Change) -> None:
        rt = self.rt
        action = REGISTRY.get(change.action)
        if action is None:
            raise ActionError("unknown action", action=change.action, resource_id=change.resource_id)
        tel = telemetry.current()
        with tel.span("remediator.elevation", remediation_id=rem.id, playbook=rem.playbook,
                      resource=change.resource_id, strategy=rt.elevator.strategy) as span, \
                telemetry.Stopwatch() as took:
            try:
                # ActionError: nothing written
                grant = rt.elevator.elevate(action=action, change=change, remediation=rem)
            except Exception:
                tel.pim_grant(time.monotonic() - took.started, rt.elevator.strategy, "failed")
                raise
            span.set(role=grant.role_name, scope=grant.scope)
        tel.pim_grant(took.seconds, rt.elevator.strategy, "granted")
        rt.audit(rem.id, "elevated", "worker", **grant.audit())
        try:
            result = rt.elevator.run(grant, lambda: action.apply(rt.clients, change), clients=rt.clients)
        finally:
            try:
                released = rt.elevator.release(grant)
            except Exception:  # the contract says release never raises; log it if one does
                log.exception("release of grant on %s failed", grant.scope)
                released = None
            if released is not None:
                rt.audit(rem.id, "released", "worker", **released.audit())
        rt.audit(rem.id, "change_applied", "worker", action=change.action, operation=change.operation,
                 resource_id=change.resource_id, detail=result.detail)
        with tel.span("remediator.verify", remediation_id=rem.id, playbook=rem.playbook,
                      resource=change.resource_id) as span:
            problem = action.verify(rt.state, change)
            if problem is not None:
                span.error(problem)
                raise VerifyError(f"verify failed: {problem}", action=change.action, resource_id=change.resource_id)
        rt.audit(rem.id, "change_verified", "worker", resource_id=change.resource_id)

    def _check_plan(self, rem: Remediation, recovering: bool) -> _Go | _End:
        finding = finding_from_json(rem.finding)
        result = self.rt.planner().plan_one(finding)
        if result.outcome == "changes" and result.playbook == rem.playbook and result.fingerprint == rem.fingerprint:
            return _Go(result.changes)
        if result.outcome == "no_changes":
            if recovering and not self._unverified([change_from_json(c) for c in rem.changes]):
                return _End("applied", "recovered: an earlier delivery applied the plan; verified, nothing "
                                       "written again", events=("recovered",))
            return _End("no_change", "nothing to do any more: the resource is already compliant")
        if result.outcome == "exempt":
            return _End("exempt", f"the resource became exempt after approval: {result.reason}")
        if result.outcome == "changes":
            what = "a different playbook now claims this finding" if result.playbook != rem.playbook else \
                f"the plan changed from {(rem.fingerprint or '')[:19]}… to {(result.fingerprint or '')[:19]}…"
            return _End("stale", f"the resource changed after approval ({what}); nothing was applied",
                        reask=result)
        if result.outcome == "no_match":
            return _End("stale", f"the playbook no longer claims this finding ({result.reason}); nothing was "
                                 "applied")
        return _End("failed", f"could not re-plan before applying: {result.reason}")

    def _check_undo(self, rem: Remediation, recovering: bool) -> _Go | _End:
        undo = tuple(change_from_json(c) for c in rem.changes)
        if recovering and not self._unverified(list(undo)):
            return _End("applied", "recovered: an earlier delivery applied the undo; verified, nothing written "
                                   "again", events=("recovered",))
        original = self.rt.store.get(rem.undo_of or "")
        if original is None:
            return _End("failed", "the remediation to undo no longer exists")
        problems = self._unverified([change_from_json(c) for c in original.changes])
        if problems:
            return _End("stale", f"the resource changed since remediator wrote it ({problems[0]}); undoing "
                                 "would overwrite that, so nothing was applied")
        return _Go(undo)

    def _unverified(self, changes: list[Change]) -> list[str]:
        out = []
        for change in changes:
            action = REGISTRY.get(change.action)
            problem = "unknown action" if action is None else action.verify(self.rt.state, change)
            if problem is not None:
                out.append(f"{ids.parse(change.resource_id).name}: {problem}")
        return out

    # -- endings ----------------------------------------------------------------------------
    def _end(self, rem: Remediation, verdict: _End) -> None:
        if verdict.state == "applied":
            self._applied(rem, verdict.reason, recovered=True)
            return
        if verdict.state == "failed":
            self._fail(rem, verdict.reason)
            return
        rt = self.rt
        new = rt.move(rem, verdict.state, from_states=RESOLVED, error=verdict.reason, updated_at=rt.clock())
        if new is None:
            return
        rt.audit(rem.id, verdict.state, "worker", reason=verdict.reason)
        rt.ended(new)
        rt.enqueue("update", remediation_id=rem.id)
        if verdict.state != "stale":
            rt.reply(new, "info", verdict.reason.capitalize())
            return
        text = f"Stale: {verdict.reason}."
        if verdict.reask is not None:
            if rem.attempt >= MAX_REASKS:
                text += f" The plan changed {MAX_REASKS} times in a row; not asking again until Defender reports it."
            else:
                successor = self._reask(rem, verdict.reask)
                if successor is not None:
                    text += " The new plan was posted for approval." if successor.state == "pending_approval" \
                        else f" A new remediation was opened ({successor.state.replace('_', ' ')})."
        rt.reply(new, "stale", text)

    def _reask(self, stale: Remediation, result: Result) -> Remediation | None:
        rt = self.rt
        finding = finding_from_json(stale.finding)
        # posted at once in the stale request's thread context, never folded into a digest
        fresh = replace(rt.build(finding, result, attempt=stale.attempt + 1, trace_context=stale.trace_context),
                        announced=True)
        stored, created = rt.store.create(fresh)
        if not created:
            rt.audit(stale.id, "reask_deduplicated", "worker", open_remediation=stored.id)
            return stored
        rt.audit(stale.id, "replaced", "worker", replaced_by=stored.id)
        stored = rt.opened(stored, "the resource changed after approval; asking again", actor="worker",
                           replaces=stale.id)
        if stored.state == "pending_approval":
            rt.enqueue("post", remediation_id=stored.id)
        return stored

    def _fail(self, rem: Remediation, reason: str) -> None:
        rt = self.rt
        log.error("remediation %s failed: %s", rem.id, reason)
        new = rt.move(rem, "failed", from_states=("approved", "applying", "pending_approval", "planned"),
                      error=reason, updated_at=rt.clock())
        if new is None:
            return
        rt.audit(rem.id, "failed", "worker", reason=reason)
        rt.ended(new)
        rt.enqueue("update", remediation_id=rem.id)
        rt.reply(new, "failed", f"Failed: {reason}")

    def _applied(self, rem: Remediation, reason: str, *, recovered: bool = False) -> None:
        rt = self.rt
        now = rt.clock()
        new = rt.move(rem, "applied", from_states=("applying",), error=None, updated_at=now)
        if new is None:
            return
        rt.audit(rem.id, "applied", "worker", reason=reason, recovered=recovered, fingerprint=rem.fingerprint)
        rt.ended(new)
        rt.enqueue("update", remediation_id=rem.id)
        undo = undo_available(new, rt.settings)
        n = len(new.changes)
        rt.reply(new, "applied", f"{'Undone' if rem.undo_of else 'Applied'} and verified: {n} change"
                                 f"{'' if n == 1 else 's'}." + (" (recovered after a restart)" if recovered else ""),
                 undo_available=undo)
        if rem.undo_of:
            original = rt.store.get(rem.undo_of)
            if original is not None:
                back = rt.move(original, "rolled_back", from_states=("applied",), updated_at=now)
                if back is not None:
                    rt.audit(original.id, "rolled_back", "worker", undo=rem.id)
                    rt.ended(back)
                    rt.enqueue("update", remediation_id=original.id)
                    rt.reply(back, "rolled_back", f"Rolled back at {when(now)}: the undo was approved and verified.")


def finding_keys(f: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The keys a health report of this finding matches: an alert by its id; others by kind, type and
    resource, and identity sub-assessments also by kind, type, resource and principal (a healthy
    parent assessment resolves every principal; a healthy sub-assessment only its own)."""
    kind = str(f.get("kind") or "")
    if kind == "alert":
        return [("alert", str(f.get("id") or "").lower())]
    base = (kind, str(f.get("type") or "").lower(), ids.key(str(f.get("resource_id") or "")))
    principal = f.get("principal_id")
    return [(*base, str(principal).lower()), base] if principal else [base]


def resolution_signal(record: Any) -> dict[str, Any]:
    """A ``resolved`` job's signal for an ``Ignored`` record that ``resolves`` a finding."""
    return {"kind": record.kind, "type": record.type, "resource_id": record.resource_id, "id": record.id,
            "principal_id": record.principal_id, "reason": record.reason[:200]}


def undo_available(rem: Remediation, settings: Settings) -> bool:
    """An applied forward remediation whose every action is reversible, with a non-zero window."""
    if rem.undo_of or settings.undo_window.total_seconds() <= 0 or not rem.changes:
        return False
    for c in rem.changes:
        action = REGISTRY.get(str(c["action"]))
        if action is None or not action.reversible:
            return False
    return True

