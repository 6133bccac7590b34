"""The engine: findings → remediations → approvals → queued applies, as a state machine on the store.

States (``remediator.store.base``): ``planned → pending_approval → approved → applying → applied |
failed``, plus ``rejected``, ``expired``, ``stale``, ``no_change``, ``exempt``, ``rolled_back``.
Every transition is a compare-and-set on the store; a double click, a replayed request or two
workers lose the race and do nothing.

The engine talks only to ports: ``Store``, ``ChatPort`` (Slack, the terminal, or nothing),
``Elevator`` (privilege), ``Directory`` (user-group membership) and the ARM clients/state reader.
The approval path (``approve``, ``reject``, ``request_undo``, ``pause``) does store operations
only — no ARM, no chat — so a Slack click is answered well inside 3 seconds; messages and applies
happen on the worker (``work``/``handle``, see ``remediator.worker``).

Decisions (the design notes of issue 3):

* **Ingest.** ``ignored``/``no_match`` records store nothing; ``error`` is audited. ``exempt`` and
  ``no_changes`` are stored in their final state (audit; they take no dedup slot). ``changes``
  opens a remediation (id ``secrets.token_urlsafe(16)``) unless one is open for the same playbook
  and resource (outcome ``duplicate``, no second message). Slack playbooks go straight to
  ``pending_approval``; ``approval: auto`` ones are ``planned`` and then decided: applied when the
  risk is low, not paused and inside the per-subscription hourly budget, else asked for approval.
* **Who approves an auto playbook that needs a human** (paused, budget spent): the ``admins``.
* **Paused** (``/remediate pause``): findings are still planned and recorded; auto-remediation is
  suppressed (they are asked for approval, as the issue says); approvals are still recorded, but
  nothing is applied: apply jobs leave the remediation ``approved``. ``resume`` enqueues an apply
  for every approved remediation. A remediation already ``applying`` when the pause lands finishes.
* **Storms.** New approval requests of one playbook in one resource group from one ``ingest``
  call, ``storm_threshold`` or more (default 5), are announced by one ``post_digest`` job (in
  chunks of ``DIGEST_MAX``) instead of one message each. Each remediation keeps its own
  approval; ``approve_digest`` approves a list of them with the same checks.
* **Expiry** is checked on every click as well as by ``sweep``; an expired request is a denial.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from remediator.actions import REGISTRY
from remediator.approval import (
    APPROVE_CHECKS,
    REJECT_CHECKS,
    Actor,
    Attempt,
    Decision,
    Directory,
    Refusal,
    admin_reason,
    approvals,
    first_refusal,
    mentions,
    org_reason,
    requirement_text,
    terms,
    when,
)
from remediator.azure.clients import ArmClients
from remediator.chat import ChatPort
from remediator.config import Settings
from remediator.elevation import Elevator
from remediator.errors import ActionError
from remediator.model import Finding, Record
from remediator.plan import fingerprint
from remediator.playbooks import Exemptions, PlaybookSet
from remediator.state import StateReader
from remediator.store.base import OPEN_STATES, AuditEvent, Job, Remediation, Store
from remediator.worker import (
    CAS_RETRIES,
    PAUSE_FLAG,
    Runtime,
    Worker,
    change_from_json,
    change_to_json,
    undo_available,
)

log = logging.getLogger("remediator.engine")

__all__ = ["Actor", "Decision", "Directory", "Engine", "IngestResult"]

DIGEST_MAX = 500  # remediations per digest message (a queue message stays far below 64 KB)
MAX_DIGEST_APPROVALS = 1000  # one approve_digest call approves at most this many
MAX_REASON = 500
RECENT_FINDINGS = 50_000  # finding ids remembered per process for the redelivery shortcut


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    """What ``ingest`` did with one record."""

    record: Mapping[str, str | None]  # the finding summary: id, kind, type, resource_id
    outcome: str  # the plan outcome (changes, no_changes, exempt, no_match, ignored, error) or "duplicate"
    remediation: Remediation | None
    reason: str


class Engine:
    """See the module docstring. Thread-safe as far as the store is."""

    def __init__(self, *, store: Store, settings: Settings, playbooks: PlaybookSet, state: StateReader,
                 clients: ArmClients, elevator: Elevator, chat: ChatPort | None = None,
                 directory: Directory | None = None, exemptions: Exemptions | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._rt = Runtime(store=store, settings=settings, playbooks=playbooks, state=state, clients=clients,
                           elevator=elevator, clock=clock, chat=chat, directory=directory, exemptions=exemptions)
        self._worker = Worker(self._rt)
        self.store = store
        self.settings = settings
        # finding id → the open remediation it opened: a redelivered finding (Event Hub is
        # at-least-once) is answered "duplicate" without re-reading state and re-planning
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._recent_lock = threading.Lock()

    # -- ingest -----------------------------------------------------------------------------
    def ingest(self, records: Iterable[Record], *, source: str = "defender") -> list[IngestResult]:
        rt = self._rt
        planner = rt.planner()
        out: list[IngestResult | None] = []
        batch: list[tuple[int, Remediation, str]] = []
        for record in records:
            known = self._known_open(record)
            if known is not None:  # a redelivery: answered without planning again
                out.append(IngestResult(record=record.summary(), outcome="duplicate", remediation=known,
                                        reason=f"remediation {known.id} is already open "
                                               f"({known.state.replace('_', ' ')})"))
                continue
            result = planner.plan_one(record)
            if not isinstance(record, Finding) or result.outcome in ("ignored", "no_match", "error"):
                if result.outcome == "error":
                    rt.audit(None, "plan_error", source, finding=dict(result.finding), reason=result.reason)
                out.append(IngestResult(record=result.finding, outcome=result.outcome, remediation=None,
                                        reason=result.reason))
                continue
            batch.append((len(out), rt.build(record, result), result.reason))
            out.append(None)
        with self.store.batch():  # one commit for the whole burst on SQLite; all of it or none
            self._announce(self._persist(batch, out, source))
        return [r for r in out if r is not None]

    def _persist(self, batch: Sequence[tuple[int, Remediation, str]], out: list[IngestResult | None],
                 source: str) -> list[Remediation]:
        """Create the batch's remediations, audit them and take the auto decisions; fills ``out``."""
        rt = self._rt
        stored = self.store.create_many([rem for _, rem, _ in batch]) if batch else []
        fresh: list[Remediation] = []
        for (i, rem, reason), (held, created) in zip(batch, stored, strict=True):
            summary = {"id": rem.finding_id, "kind": str(rem.finding.get("kind")),
                       "type": str(rem.finding.get("type")), "resource_id": rem.resource_id}
            outcome = {"exempt": "exempt", "no_change": "no_changes"}.get(rem.state, "changes")
            self._remember(rem.finding_id, held)
            if not created:
                out[i] = IngestResult(record=summary, outcome="duplicate", remediation=held,
                                      reason=f"remediation {held.id} is already open ({held.state.replace('_', ' ')})")
                continue
            got = rt.opened(held, reason, actor=source)
            if got.state == "pending_approval":
                fresh.append(got)
            out[i] = IngestResult(record=summary, outcome=outcome, remediation=got, reason=reason)
        return fresh

    def _known_open(self, record: Record) -> Remediation | None:
        """The open remediation this process last saw for ``record``'s finding id, if still open."""
        if not isinstance(record, Finding):
            return None
        with self._recent_lock:
            rid = self._recent.get(record.id)
        if rid is None:
            return None
        rem = self.store.get(rid)
        return rem if rem is not None and rem.state in OPEN_STATES else None

    def _remember(self, finding_id: str, rem: Remediation) -> None:
        if rem.state not in OPEN_STATES:
            return
        with self._recent_lock:
            self._recent[finding_id] = rem.id
            self._recent.move_to_end(finding_id)
            while len(self._recent) > RECENT_FINDINGS:
                self._recent.popitem(last=False)

    def _announce(self, fresh: Sequence[Remediation]) -> None:
        groups: dict[tuple[str, str], list[Remediation]] = defaultdict(list)
        for rem in fresh:
            group = str(rem.finding.get("resource_group") or "").lower()
            groups[(rem.playbook, group)].append(rem)
        threshold = self.settings.storm_threshold
        for (playbook, group), rems in groups.items():
            if threshold and len(rems) >= threshold:
                for start in range(0, len(rems), DIGEST_MAX):
                    chunk = [r.id for r in rems[start:start + DIGEST_MAX]]
                    self._rt.enqueue("post_digest", remediation_ids=chunk, playbook=playbook,
                                     group=group or "(subscription)")
                    self._rt.audit(None, "digest_requested", "system", playbook=playbook, group=group,
                                   remediations=len(chunk))
            else:
                for rem in rems:
                    self._rt.enqueue("post", remediation_id=rem.id)

    # -- approval ---------------------------------------------------------------------------
    def approve(self, remediation_id: str, actor: Actor) -> Decision:
        rt = self._rt
        for _ in range(CAS_RETRIES):
            now = rt.clock()
            rem = self.store.get(remediation_id)
            refusal = first_refusal(APPROVE_CHECKS, self._attempt(rem, actor, now))
            if refusal is not None or rem is None:
                return self._refused(rem, remediation_id, actor, refusal, "approve_refused")
            votes = (*rem.votes, actor.vote(now))
            got = sum(1 for v in votes if v.decision == "approve")
            if got >= rem.quorum:
                new = self.store.transition(rem, "approved", from_states=("pending_approval",), votes=votes,
                                            updated_at=now)
                if new is None:
                    continue  # lost a race: re-read and re-check everything
                rt.audit(rem.id, "approved", actor.tag, fingerprint=rem.fingerprint, approvals=got,
                         quorum=rem.quorum, **actor.audit())
                self._enqueue_update(new)
                rt.enqueue("apply", remediation_id=rem.id, fingerprint=rem.fingerprint)
                by = mentions([v.user_id for v in approvals(new)])
                then = "applying is paused; it will be applied on resume" if rt.paused() else "applying now"
                return Decision(ok=True, message=f"Approved by {by}: {then}", remediation=new)
            new = self.store.update(rem, votes=votes, updated_at=now)
            if new is None:
                continue
            rt.audit(rem.id, "approval_recorded", actor.tag, approvals=got, quorum=rem.quorum, **actor.audit())
            self._enqueue_update(new)
            missing = rem.quorum - got
            return Decision(ok=True, remediation=new,
                            message=f"Approved: {got} of {rem.quorum} approvals, waiting for {missing} more from "
                                    f"{mentions(rem.approvers)}")
        return Decision(ok=False, message="Too many people are deciding this at once; try again",
                        remediation=self.store.get(remediation_id))

    def reject(self, remediation_id: str, actor: Actor, reason: str) -> Decision:
        rt = self._rt
        reason = " ".join(reason.split())[:MAX_REASON]
        for _ in range(CAS_RETRIES):
            now = rt.clock()
            rem = self.store.get(remediation_id)
            refusal = first_refusal(REJECT_CHECKS, self._attempt(rem, actor, now))
            if refusal is not None or rem is None:
                return self._refused(rem, remediation_id, actor, refusal, "reject_refused")
            votes = (*rem.votes, actor.vote(now, decision="reject", reason=reason))
            new = self.store.transition(rem, "rejected", from_states=("pending_approval",), votes=votes,
                                        updated_at=now)
            if new is None:
                continue
            rt.audit(rem.id, "rejected", actor.tag, reason=reason, **actor.audit())
            self._enqueue_update(new)
            rt.reply(new, "rejected", f"Rejected: {reason}" if reason else "Rejected.")
            return Decision(ok=True, message="Rejected: nothing will be applied", remediation=new)
        return Decision(ok=False, message="Too many people are deciding this at once; try again",
                        remediation=self.store.get(remediation_id))

    def approve_digest(self, remediation_ids: Sequence[str], actor: Actor) -> Decision:
        decisions = [self.approve(i, actor) for i in list(dict.fromkeys(remediation_ids))[:MAX_DIGEST_APPROVALS]]
        done = [d for d in decisions if d.ok]
        if not decisions:
            return Decision(ok=False, message="Nothing to approve")
        if not done:
            return Decision(ok=False, message=decisions[0].message)
        refused = len(decisions) - len(done)
        text = f"Approved {len(done)} of {len(decisions)} requests"
        if refused:
            first = next(d.message for d in decisions if not d.ok)
            text += f"; {refused} not approved (first reason: {first})"
        return Decision(ok=True, message=text)

    def request_undo(self, remediation_id: str, actor: Actor) -> Decision:
        rt = self._rt
        now = rt.clock()
        rem = self.store.get(remediation_id)
        reason = self._undo_refusal(rem, actor, now)
        if reason is not None or rem is None:
            rt.audit(rem.id if rem else None, "undo_refused", actor.tag, reason=reason,
                     requested_id=remediation_id[:64], **actor.audit())
            return Decision(ok=False, message=reason or "This remediation no longer exists", remediation=rem)
        try:
            changes = [REGISTRY[str(c["action"])].undo(change_from_json(c)) for c in reversed(rem.changes)]
        except (ActionError, KeyError) as e:
            rt.audit(rem.id, "undo_refused", actor.tag, reason=str(e), **actor.audit())
            return Decision(ok=False, message="This remediation cannot be undone", remediation=rem)
        playbook = rt.playbooks.get(rem.playbook)
        approvers, quorum = (rem.approvers, rem.quorum) if rem.approvers else terms(playbook, self.settings,
                                                                                    fallback=True)
        expires_after = playbook.approval.expires_after if playbook else None
        undo = Remediation(
            id=secrets.token_urlsafe(16), dedup_key=f"undo|{rem.id}", finding_id=rem.finding_id, finding=rem.finding,
            playbook=rem.playbook, risk=rem.risk, resource_id=rem.resource_id, subscription_id=rem.subscription_id,
            state="pending_approval", changes=[change_to_json(c) for c in changes], fingerprint=fingerprint(changes),
            approvers=approvers, quorum=quorum, requester=actor.user_id, created_at=now, updated_at=now,
            expires_at=now + expires_after if expires_after else now, undo_of=rem.id,
        )
        stored, created = self.store.create(undo)
        if not created:
            return Decision(ok=False, message="An undo of this remediation is already waiting for approval",
                            remediation=stored)
        rt.audit(rem.id, "undo_requested", actor.tag, undo=stored.id, **actor.audit())
        rt.audit(stored.id, "approval_requested", actor.tag, undo_of=rem.id, fingerprint=stored.fingerprint,
                 changes=len(changes), reason="undo requested", **actor.audit())
        rt.enqueue("post", remediation_id=stored.id)
        return Decision(ok=True, remediation=stored,
                        message=f"Undo requested; it needs {requirement_text(stored, self.settings)}")

    def _undo_refusal(self, rem: Remediation | None, actor: Actor, now: datetime) -> str | None:
        if rem is None:
            return "This remediation no longer exists"
        if rem.undo_of:
            return "An undo cannot itself be undone"
        if rem.state != "applied":
            return f"Only an applied remediation can be undone; this one is {rem.state.replace('_', ' ')}"
        org = org_reason(actor, self.settings)
        if org is not None:
            return org
        if not undo_available(rem, self.settings):
            return "This remediation cannot be undone: not every change it made is reversible"
        applied_at = next((e.at for e in reversed(self.store.audit_log(rem.id)) if e.event == "applied"),
                          rem.updated_at)
        closes = applied_at + self.settings.undo_window
        if now >= closes:
            return f"The undo window closed at {when(closes)}"
        return None

    # -- pause ------------------------------------------------------------------------------
    def pause(self, actor: Actor) -> Decision:
        reason = admin_reason(actor, self.settings, self._rt.directory)
        if reason is not None:
            self._rt.audit(None, "pause_refused", actor.tag, reason=reason, **actor.audit())
            return Decision(ok=False, message=reason)
        if self.paused():
            return Decision(ok=True, message="Already paused")
        self.store.set_flag(PAUSE_FLAG, f"{actor.user_id} {self._rt.clock().isoformat()}")
        self._rt.audit(None, "paused", actor.tag, **actor.audit())
        return Decision(ok=True, message="Paused: nothing will be applied, automatically or after approval, "
                                         "until /remediate resume")

    def resume(self, actor: Actor) -> Decision:
        reason = admin_reason(actor, self.settings, self._rt.directory)
        if reason is not None:
            self._rt.audit(None, "resume_refused", actor.tag, reason=reason, **actor.audit())
            return Decision(ok=False, message=reason)
        if not self.paused():
            return Decision(ok=True, message="Not paused")
        self.store.set_flag(PAUSE_FLAG, None)
        self._rt.audit(None, "resumed", actor.tag, **actor.audit())
        self._rt.enqueue("resume")
        return Decision(ok=True, message="Resumed: approved remediations will be applied now")

    def paused(self) -> bool:
        return self._rt.paused()

    # -- queries ----------------------------------------------------------------------------
    def get(self, remediation_id: str) -> Remediation | None:
        return self.store.get(remediation_id)

    def pending(self) -> list[Remediation]:
        return self.store.list(states=("pending_approval",))

    def requirement(self, remediation: Remediation) -> str:
        """What approval still needs, as Slack mrkdwn built only from validated ids (no user text)."""
        return requirement_text(remediation, self.settings)

    def audit_trail(self, remediation_id: str | None = None) -> list[AuditEvent]:
        return self.store.audit_log(remediation_id)

    # -- worker -----------------------------------------------------------------------------
    def work(self, *, max_jobs: int | None = None) -> int:
        """Dequeue and handle jobs until the queue has no visible job (or ``max_jobs``).

        A job whose handler raises is left in the queue (redelivered after the visibility
        timeout, until it is poison); the loop moves on to the next one.
        """
        handled = 0
        visibility = self.settings.lock_ttl.total_seconds()
        while max_jobs is None or handled < max_jobs:
            job = self.store.dequeue(visibility_seconds=visibility)
            if job is None:
                break
            handled += 1
            try:
                self.handle(job)
            except Exception:
                log.exception("job %s (%s) failed; it will be redelivered", job.id, job.kind)
                continue
            self.store.complete(job)
        return handled

    def handle(self, job: Job) -> None:
        self._worker.handle(job)

    def sweep(self) -> int:
        """Expire overdue requests, send due reminders, and re-enqueue applies that were lost
        (an ``approved``/``applying`` remediation untouched for longer than ``lock_ttl``, e.g. after a
        crash between the approval and its enqueue). Returns how many remediations it touched."""
        rt = self._rt
        now = rt.clock()
        touched = 0
        for rem in self.store.list(states=("pending_approval",), limit=100_000):
            if rem.expires_at is not None and now >= rem.expires_at:
                touched += self._expire(rem)
                continue
            due = self._reminder_due(rem)
            if due is not None and not rem.reminded and now >= due:
                new = self.store.update(rem, reminded=True)
                if new is not None:
                    touched += 1
                    rt.audit(rem.id, "reminded", "system", expires_at=when(rem.expires_at))
                    rt.reply(new, "reminder", f"Reminder: this request still needs approval; it expires at "
                                              f"{when(rem.expires_at)}.")
        if not rt.paused():
            for rem in self.store.list(states=("approved", "applying"), limit=100_000):
                if now - rem.updated_at >= self.settings.lock_ttl:
                    new = self.store.update(rem, updated_at=now)
                    if new is not None:
                        touched += 1
                        rt.audit(rem.id, "apply_requeued", "system", state=rem.state)
                        rt.enqueue("apply", remediation_id=rem.id, fingerprint=rem.fingerprint)
        return touched

    # -- helpers ----------------------------------------------------------------------------
    def _attempt(self, rem: Remediation | None, actor: Actor, now: datetime) -> Attempt:
        return Attempt(remediation=rem, actor=actor, now=now, settings=self.settings, directory=self._rt.directory)

    def _refused(self, rem: Remediation | None, requested: str, actor: Actor, refusal: Refusal | None,
                 event: str) -> Decision:
        check = refusal.check if refusal else "open"
        reason = refusal.reason if refusal else "This request no longer exists"
        if check == "not_expired" and rem is not None:
            self._expire(rem)
        self._rt.audit(rem.id if rem else None, event, actor.tag, check=check, reason=reason,
                       requested_id=requested[:64], **actor.audit())
        return Decision(ok=False, message=reason, remediation=rem)

    def _enqueue_update(self, rem: Remediation) -> None:
        if not rem.message.get("digest"):
            self._rt.enqueue("update", remediation_id=rem.id)

    def _expire(self, rem: Remediation) -> int:
        rt = self._rt
        new = rt.move(rem, "expired", from_states=("pending_approval",), updated_at=rt.clock())
        if new is None:
            return 0
        rt.audit(rem.id, "expired", "system", expires_at=when(rem.expires_at), approvals=len(approvals(rem)))
        self._enqueue_update(new)
        rt.reply(new, "expired", f"Expired at {when(rem.expires_at)} without enough approvals: nothing was applied.")
        return 1

    def _reminder_due(self, rem: Remediation) -> datetime | None:
        playbook = self._rt.playbooks.get(rem.playbook)
        if playbook is not None and playbook.approval.mode == "slack" and playbook.approval.remind_after:
            return rem.created_at + playbook.approval.remind_after
        if self.settings.reminder_before is not None and rem.expires_at is not None:
            return rem.expires_at - self.settings.reminder_before
        return None
