"""The engine: findings → remediations → approvals → queued applies, as a state machine on the store.

States (``remediator.lifecycle.model``): ``planned → pending_approval → approved → applying → applied |
failed``, plus ``rejected``, ``expired``, ``stale``, ``no_change``, ``exempt``, ``rolled_back``,
``withdrawn``; ``TRANSITIONS`` there lists every move, and the store refuses any other. Every
transition is a compare-and-set on the store; a double click, a replayed request or two workers
lose the race and do nothing.

The engine talks only to ports: ``Store``, ``ChatPort`` (Slack, the terminal, or nothing),
``Elevator`` (privilege), ``Directory`` (user-group membership), the ARM clients/state reader, and
for the admins' ``doctor`` and ``report`` the ``Preflight`` and ``EvidenceTotals`` its wiring gives
it (``remediator.lifecycle.reports``). What it says to people returns as data: a ``Decision``'s
message is a ``Text`` naming people by id, ``requirement`` a ``Need``; the adapters render them.
The approval path (``approve``, ``reject``, ``request_undo``, ``pause``) does store operations
only — no ARM, no chat — so a Slack click is answered well inside 3 seconds; messages and applies
happen on the worker (``work``/``handle``, see ``remediator.lifecycle.worker``).

Decisions (the design notes of issue 3):

* **Ingest** (``ingest``) reads no resource state, so it keeps up with a storm: ``ignored`` records and
  findings no playbook can claim whatever the resource's tags (``no_match``) store nothing; every
  other finding goes into the store's inbox (deduplicated by finding id: a finding waiting to be
  planned, or whose remediation is still open, is a ``duplicate``) and ``plan`` jobs are queued, in
  the same transaction on SQLite: a delivery is split into about ``PLAN_SPREAD`` jobs of at least
  ``PLAN_MIN`` and at most ``PLAN_CHUNK`` findings (``jobs.plan_groups``), each resource's findings in
  one job, so that several workers plan a backlog at once and no two plan the same resource.
* **Planning** (the ``plan`` job, ``Engine.plan``; see ``remediator.lifecycle.worker``) reads state and plans.
  ``no_match`` (a tag condition) and ``error`` open nothing (errors are audited). ``exempt`` and
  ``no_changes`` are stored in their final state (audit; they take no dedup slot). ``changes``
  opens a remediation (id: 16 random or derived bytes, ``opening.new_id``) unless one is open for the same playbook
  and resource (then the finding joins it: audited, no second message). Slack playbooks go
  straight to ``pending_approval``; ``approval: auto`` ones are decided at once: ``approved`` (an
  apply job) when the risk is low, not paused and inside the per-subscription hourly budget, else
  asked for approval.
* **Who approves an auto playbook that needs a human** (paused, budget spent): the ``admins``.
* **Paused** (``/remediate pause``): findings are still planned and recorded; auto-remediation is
  suppressed (they are asked for approval, as the issue says); approvals are still recorded, but
  nothing is applied: apply jobs leave the remediation ``approved``. ``resume`` enqueues an apply
  for every approved remediation. A remediation already ``applying`` when the pause lands finishes.
* **Storms.** New requests are not posted by the plan job: it queues an ``announce`` job
  ``group_wait`` later (Alertmanager's ``group_wait``), which takes every request not yet
  announced, whichever delivery brought it, and groups them by playbook and resource group: a
  group of ``storm_threshold`` or more (default 5) is one ``post_digest`` job (in chunks of
  ``DIGEST_MAX``), a smaller one a ``post`` job each. Each remediation keeps its own approval;
  ``approve_digest`` approves a list of them with the same checks. A request is ``announced`` only
  when the chat confirmed its message (``remediator.lifecycle.posting``): until then the sweep
  queues the announce again, for as long as the request is pending.
* **Expiry** is checked on every click as well as by ``sweep``; an expired request is a denial.
* **Healthy again.** A record that resolves a finding (a Healthy assessment, a resolved alert, a
  Compliant policy state: ``Ignored.resolves``) is still ``ignored`` by ingest, and queues a
  ``resolved`` job that withdraws its pending requests. ``reconcile`` does the same after a
  complete backlog scan for every pending request of the scanned subscriptions whose finding
  the scan no longer reports (``remediator.azure.graph``).
* **Concurrency.** ``work(threads=N)`` handles jobs on N threads; ARM's pace is kept per
  subscription by the clients (``remediator.azure.pace``), exactly-once by the store's
  compare-and-set and the resource locks, as with one thread.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediator import ids, telemetry
from remediator.actions import REGISTRY
from remediator.actions.change import fingerprint
from remediator.actions.continuous_export import EXPORT_POLICY
from remediator.azure.clients import ArmClients
from remediator.azure.state import StateReader
from remediator.config.settings import Settings
from remediator.errors import ActionError, RemediatorError
from remediator.findings.model import Finding, Record
from remediator.lifecycle.approval import (
    APPROVE_CHECKS,
    REJECT_CHECKS,
    Actor,
    Attempt,
    Decision,
    Directory,
    Need,
    Refusal,
    Requirement,
    admin_reason,
    approvals,
    first_refusal,
    need,
    org_reason,
    requirement_text,
    terms,
    undo_requester_reason,
    when,
)
from remediator.lifecycle.chat import ChatPort
from remediator.lifecycle.codec import change_from_json, change_to_json, finding_to_json
from remediator.lifecycle.export_watch import EXPORT_ROUTE, ExportWatch, subscription_of
from remediator.lifecycle.export_watch import report as export_report
from remediator.lifecycle.jobs import (
    AnnounceJob,
    ApplyJob,
    PlanJob,
    PostJob,
    ResolvedJob,
    ResumeJob,
    UpdateJob,
    plan_chunks,
    plan_groups,
    plan_size,
    resource_slices,
)
from remediator.lifecycle.lease import JobDelivery, keep_alive
from remediator.lifecycle.model import AuditEvent, Inbound, Job, Remediation
from remediator.lifecycle.opening import new_id
from remediator.lifecycle.reports import EvidenceTotals, Preflight, SlackChecks
from remediator.lifecycle.resolution import HealthSignal, finding_keys
from remediator.lifecycle.runtime import CAS_RETRIES, PAUSE_FLAG, Runtime, undo_available
from remediator.lifecycle.store import Store
from remediator.lifecycle.text import Text, people, say
from remediator.lifecycle.worker import Planned, Worker
from remediator.planning.names import NameResolver
from remediator.playbooks import Exemptions, PlaybookSet
from remediator.privilege.elevation import Elevator
from remediator.words import plural

if TYPE_CHECKING:
    from remediator.azure.graph import Graph, ScanResult

log = logging.getLogger("remediator.engine")

__all__ = ["Actor", "Decision", "Directory", "Engine", "IngestResult", "Planned"]

MAX_DIGEST_APPROVALS = 1000  # one approve_digest call approves at most this many
MAX_REASON = 500
INGEST_SLICE = 500  # findings stored per transaction by one ingest call
INBOX_RETENTION = timedelta(days=8)  # planned inbox rows kept this long: a weekly snapshot re-send is a duplicate
RESOLVED_CHUNK = 200  # health signals per ``resolved`` job
INTAKE_GRACE = timedelta(minutes=15)  # a finding waiting longer than this (and lock_ttl) lost its plan job
COUNTER_RETENTION = timedelta(days=2)  # counter windows kept (hourly auto budgets, per-second Slack post windows)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _retry_scheduled(rem: Remediation, now: datetime) -> bool:
    """A request whose next post attempt is scheduled (its job comes back by itself): no announce needed."""
    try:
        retry_at = datetime.fromisoformat(str(rem.posting.get("retry_at") or ""))
    except ValueError:
        return False
    return retry_at > now


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    """What ``ingest`` did with one record."""

    record: Mapping[str, str | None]  # the finding summary: id, kind, type, resource_id
    outcome: str  # "queued" (for planning), "duplicate", "no_match" or "ignored"
    reason: str


class Engine:
    """See the module docstring. Thread-safe as far as the store is."""

    def __init__(self, *, store: Store, settings: Settings, playbooks: PlaybookSet, state: StateReader,
                 clients: ArmClients, elevator: Elevator, chat: ChatPort | None = None,
                 directory: Directory | None = None, exemptions: Exemptions | None = None,
                 clock: Callable[[], datetime] = _utcnow, graph: Graph | None = None,
                 preflight: Preflight | None = None, evidence: EvidenceTotals | None = None,
                 names: NameResolver | None = None) -> None:
        self._preflight = preflight
        self.names = names  # names beside ids for what the adapters show (remediator.lifecycle.naming)
        self._evidence = evidence
        self._rt = Runtime(store=store, settings=settings, playbooks=playbooks, state=state, clients=clients,
                           elevator=elevator, clock=clock, chat=chat, directory=directory, exemptions=exemptions,
                           graph=graph)
        self._worker = Worker(self._rt)
        self._exports = ExportWatch(self._rt)
        self.store = store
        self.settings = settings

    # -- ingest -----------------------------------------------------------------------------
    def ingest(self, records: Iterable[Record], *, source: str = "defender") -> list[IngestResult]:
        """Receive findings: store each new one in the inbox and queue ``plan`` jobs for them.

        No resource state is read here: what no playbook can claim whatever the resource's tags is
        answered ``no_match`` at once, everything else is planned by the worker (which reads state
        anyway before it writes). A finding already received is a ``duplicate`` while it waits to
        be planned or while the remediation it opened is open. Findings are stored in slices of about
        ``INGEST_SLICE`` (whole resources: a resource's findings are stored, and planned, together),
        each slice in one transaction with its plan jobs (on SQLite), once every record was read.
        """
        rt = self._rt
        now = rt.clock()
        tel = telemetry.current()
        out: list[IngestResult | None] = []
        waiting: list[tuple[int, Mapping[str, str | None], Inbound]] = []
        signals: list[HealthSignal] = []
        exported: set[str] = set()  # subscriptions the export route brought something of
        for record in records:
            if source == EXPORT_ROUTE:
                exported.add(subscription_of(record) or "")
            if not isinstance(record, Finding):
                out.append(IngestResult(record=record.summary(), outcome="ignored", reason=record.reason))
                if record.resolves:
                    signals.append(HealthSignal.of(record))
                continue
            why = rt.playbooks.could_claim(record)
            if why is not None:
                out.append(IngestResult(record=record.summary(), outcome="no_match", reason=why))
                continue
            doc = finding_to_json(record)
            if tel.enabled:  # the trace of the remediation this finding may open starts here
                with tel.span("remediator.ingest", finding_id=record.id, finding_kind=record.kind,
                              finding_type=record.type, resource=record.resource_id, source=source) as span:
                    doc["traceparent"] = span.traceparent
            waiting.append((len(out), record.summary(), Inbound(finding_id=record.id, finding=doc, source=source,
                                                                 received_at=now,
                                                                 generation=secrets.token_urlsafe(16))))
            out.append(None)
        # a resource's findings in one slice (so in one plan job): a scan lists them query by query, and a
        # finding planned after its resource's remediation ended would open a second one
        size = plan_size(len(waiting))  # plan jobs sized for the whole delivery, not per slice
        for piece in resource_slices(waiting, lambda item: str(item[2].finding.get("resource_id") or ""), INGEST_SLICE):
            self._receive(piece, out, size)
        for start in range(0, len(signals), RESOLVED_CHUNK):
            rt.enqueue(ResolvedJob(signals=tuple(signals[start:start + RESOLVED_CHUNK]), source=source))
        if exported:
            self._exports.seen(exported, now)
        results = [r for r in out if r is not None]
        if tel.enabled:
            for r in results:
                tel.finding_ingested(str(r.record.get("kind") or "unknown"), r.outcome)
        return results

    def scan_and_reconcile(self, *, actor: str = "reconcile") -> dict[str, object]:
        """The daily reconcile: scan the configured scope (``scan_subscriptions`` / ``scan_management_group``)
        in Resource Graph, check each subscription's continuous export (a wrong one is a finding too), ingest what
        is open (deduplicated as ever), withdraw what is no longer, and tell the channel of each subscription that
        has open findings and sent nothing for ``export_silence`` (``remediator.lifecycle.export_watch``)."""
        from remediator.azure.graph import Graph, Scope  # noqa: PLC0415

        rt = self._rt
        graph = rt.graph or Graph(rt.clients)
        scope = Scope(subscriptions=self.settings.scan_subscriptions,
                      management_group=self.settings.scan_management_group)
        scan = graph.scan(scope)
        exports = self._exports.check(scan)
        answers = self.ingest(scan.records, source=actor)
        withdrawn = self.reconcile(scan, actor=actor)
        apps = self.scan_app_roles(actor=actor)
        silent = self._exports.silence(scan, exports)
        outcomes: dict[str, int] = {}
        for a in [*answers, *(apps or [])]:
            outcomes[a.outcome] = outcomes.get(a.outcome, 0) + 1
        return {"scope": scope.describe(), "rows": dict(scan.rows), "ingested": outcomes,
                "withdrawn": len(withdrawn), "complete": scan.complete and apps is not None,
                "exports": export_report(exports), "silent": silent}

    def scan_app_roles(self, *, actor: str = "reconcile") -> list[IngestResult] | None:
        """Scan Microsoft Graph for tenant-wide application permissions (``remediator.azure.approles``) and
        ingest them, when a playbook claims them (``entra-remove-graph-data-permissions``); ``[]`` when none
        does. A Graph failure is audited (``app_role_scan_failed``) and returns None: the scan is incomplete,
        the next reconcile reads it again."""
        from remediator.azure.approles import scan  # noqa: PLC0415
        from remediator.findings.approles import OPERATION  # noqa: PLC0415

        rt = self._rt
        if not any(OPERATION in p.match.operations for p in rt.playbooks):
            return []
        try:
            client = rt.clients.msgraph()
        except RemediatorError as e:  # no Graph for this ARM endpoint (a local fake, Azure Stack): not configured
            log.warning("app role scan skipped: %s", e)
            rt.audit(None, "app_role_scan_skipped", actor, reason=str(e))
            return []
        try:
            findings = scan(client)
        except RemediatorError as e:
            log.warning("app role scan failed: %s", e)
            rt.audit(None, "app_role_scan_failed", actor, reason=str(e))
            return None
        return self.ingest(findings, source=actor)

    def check_exports(self, subscriptions: Sequence[str], *, actor: str = "reconcile") -> dict[str, Any]:
        """The reconcile's continuous-export check alone, over ``subscriptions``: a wrong export's finding is
        ingested (``scan_and_reconcile`` does the same with the scan's subscriptions). Per subscription ``ok``, what
        is wrong (``missing``, ``disabled``, ``elsewhere``, ``sources``) or ``unreadable``."""
        from remediator.azure.graph import ScanResult  # noqa: PLC0415

        scan = ScanResult(subscriptions=frozenset(s.lower() for s in subscriptions))
        exports = self._exports.check(scan)
        if scan.records:
            self.ingest(scan.records, source=actor)
        return export_report(exports)

    def reconcile(self, scan: ScanResult, *, actor: str = "reconcile") -> list[Remediation]:
        """Withdraw every pending request of the scan's subscriptions whose finding the (complete) scan
        no longer reports: it was fixed, dismissed or deleted outside remediator. Nothing is written
        to ARM. An incomplete scan withdraws nothing (audited ``reconcile_skipped``)."""
        rt = self._rt
        if not scan.complete:
            rt.audit(None, "reconcile_skipped", actor, reason="the scan was incomplete", problems=scan.problems[:5])
            return []
        still_open = {key for f in scan.findings for key in finding_keys(finding_to_json(f))[:1]}
        withdrawn: list[Remediation] = []
        when = rt.clock().strftime("%Y-%m-%d %H:%M UTC")
        for rem in self.store.list(states=("pending_approval",), limit=100_000):
            kind = str(rem.finding.get("kind") or "")
            if rem.undo_of or kind not in scan.kinds or (rem.subscription_id or "").lower() not in scan.subscriptions:
                continue
            if finding_keys(rem.finding)[0] in still_open:
                continue
            if str(rem.finding.get("type") or "").lower() == EXPORT_POLICY and \
                    (rem.subscription_id or "").lower() not in scan.export_checked:
                continue  # an export that was not read (an outage, a scan by the CLI) is not an export repaired
            new = self._worker.withdraw(rem, f"the backlog scan of {when} no longer reports this finding", actor=actor)
            if new is not None:
                withdrawn.append(new)
        rt.audit(None, "reconciled", actor, subscriptions=len(scan.subscriptions), open_findings=len(still_open),
                 withdrawn=len(withdrawn))
        return withdrawn

    def _receive(self, items: Sequence[tuple[int, Mapping[str, str | None], Inbound]],
                 out: list[IngestResult | None], size: int) -> None:
        if not items:
            return
        with self.store.batch():  # the slice and its plan jobs: one commit on SQLite, all of it or none
            answers = self.store.receive([item for _, _, item in items])
            fresh = [(item.finding_id, str(item.finding.get("resource_id") or ""))
                     for (_, _, item), ok in zip(items, answers, strict=True) if ok]
            for chunk in plan_groups(fresh, size=size):  # several jobs for a backlog: several workers plan it at once
                self._rt.enqueue(PlanJob(finding_ids=tuple(chunk)))
        for (i, summary, _), queued in zip(items, answers, strict=True):
            out[i] = IngestResult(record=summary, outcome="queued", reason="queued for planning") if queued else \
                IngestResult(record=summary, outcome="duplicate",
                             reason="already received: waiting to be planned, or its remediation is still open")

    def plan(self, finding_ids: Sequence[str]) -> list[Planned]:
        """Plan received findings now (what a ``plan`` job does): read state, plan, open remediations
        or join open ones, take the auto decisions, and queue the announcement of new requests.
        Findings not waiting in the inbox (planned already, or never received) are skipped."""
        return self._worker.plan_findings(finding_ids)

    # -- approval ---------------------------------------------------------------------------
    def approve(self, remediation_id: str, actor: Actor) -> Decision:
        return self._decide(remediation_id, actor, APPROVE_CHECKS, "approve_refused",
                            lambda rem, now: self._approve(rem, actor, now))

    def reject(self, remediation_id: str, actor: Actor, reason: str) -> Decision:
        reason = " ".join(reason.split())[:MAX_REASON]
        return self._decide(remediation_id, actor, REJECT_CHECKS, "reject_refused",
                            lambda rem, now: self._reject(rem, actor, reason, now))

    def _decide(self, remediation_id: str, actor: Actor, checks: Sequence[Requirement], refused: str,
                act: Callable[[Remediation, datetime], Decision | None]) -> Decision:
        """A click: read, check (``refused``: the audit event of a refusal), ``act`` by compare-and-set;
        a lost race (``act`` answers None) re-reads and re-checks everything."""
        for _ in range(CAS_RETRIES):
            now = self._rt.clock()
            rem = self.store.get(remediation_id)
            refusal = first_refusal(checks, self._attempt(rem, actor, now))
            if refusal is not None or rem is None:
                return self._refused(rem, remediation_id, actor, refusal, refused)
            decision = act(rem, now)
            if decision is not None:
                return decision
        return Decision(ok=False, message=say("Too many people are deciding this at once; try again"),
                        remediation=self.store.get(remediation_id))

    def _approve(self, rem: Remediation, actor: Actor, now: datetime) -> Decision | None:
        rt = self._rt
        votes = (*rem.votes, actor.vote(now))
        got = sum(1 for v in votes if v.decision == "approve")
        if got >= rem.quorum:
            new = self.store.transition(rem, "approved", from_states=("pending_approval",), votes=votes,
                                        updated_at=now, audit=rt.record(
                                            rem.id, "approved", actor.tag, fingerprint=rem.fingerprint, approvals=got,
                                            quorum=rem.quorum, **actor.audit(), state="approved"))
            if new is None:
                return None
            rt.traced_approval(new, approvals=got, quorum=rem.quorum, approver=actor.user_id)
            self._enqueue_update(new)
            rt.enqueue(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint, asked=True))
            then = "applying is paused; it will be applied on resume" if rt.paused() else "applying now"
            return Decision(ok=True, message=say("Approved by ", people([v.user_id for v in approvals(new)]),
                                                 f": {then}"), remediation=new)
        new = self.store.update(rem, votes=votes, updated_at=now, audit=rt.record(
            rem.id, "approval_recorded", actor.tag, approvals=got, quorum=rem.quorum, **actor.audit()))
        if new is None:
            return None
        with telemetry.current().span("remediator.approval", parent=rem.trace_context, remediation_id=rem.id,
                                      playbook=rem.playbook, resource=rem.resource_id, approvals=got,
                                      quorum=rem.quorum, decision="approval_recorded"):
            pass
        self._enqueue_update(new)
        voted = {v.user_id for v in approvals(new)}
        others = [a for a in rem.approvers if a not in voted]  # never "waiting for … @me" to the one who voted
        waiting = f"Approved: {got} of {plural(rem.quorum, 'approval')}, waiting for {rem.quorum - got} more"
        return Decision(ok=True, remediation=new,
                        message=say(waiting, " from ", people(others)) if others else say(waiting))

    def _reject(self, rem: Remediation, actor: Actor, reason: str, now: datetime) -> Decision | None:
        rt = self._rt
        votes = (*rem.votes, actor.vote(now, decision="reject", reason=reason))
        new = self.store.transition(rem, "rejected", from_states=("pending_approval",), votes=votes, updated_at=now,
                                    audit=rt.record(rem.id, "rejected", actor.tag, reason=reason, **actor.audit(),
                                                    state="rejected"))
        if new is None:
            return None
        with telemetry.current().span("remediator.approval", parent=rem.trace_context, remediation_id=rem.id,
                                      playbook=rem.playbook, resource=rem.resource_id, decision="rejected"):
            rt.ended(new)
        self._enqueue_update(new)
        rt.reply(new, "rejected", f"Rejected: {reason}" if reason else "Rejected.")
        return Decision(ok=True, message=say("Rejected: nothing will be applied"), remediation=new)

    def approve_digest(self, remediation_ids: Sequence[str], actor: Actor) -> Decision:
        decisions = [self.approve(i, actor) for i in list(dict.fromkeys(remediation_ids))[:MAX_DIGEST_APPROVALS]]
        done = [d for d in decisions if d.ok]
        if not decisions:
            return Decision(ok=False, message=say("Nothing to approve"))
        if not done:
            return Decision(ok=False, message=decisions[0].message)
        refused = len(decisions) - len(done)
        text = say(f"Approved {len(done)} of {plural(len(decisions), 'request')}")
        if refused:
            first = next(d.message for d in decisions if not d.ok)
            text = say(text, f"; {refused} not approved (first reason: ", first, ")")
        return Decision(ok=True, message=text)

    def request_undo(self, remediation_id: str, actor: Actor) -> Decision:
        rt = self._rt
        now = rt.clock()
        rem = self.store.get(remediation_id)
        reason = self._undo_refusal(rem, actor, now)
        if reason is not None or rem is None:
            rt.audit(rem.id if rem else None, "undo_refused", actor.tag, reason=reason.plain() if reason else None,
                     requested_id=remediation_id[:64], **actor.audit())
            return Decision(ok=False, message=reason or say("This remediation no longer exists"), remediation=rem)
        try:
            changes = [REGISTRY[str(c["action"])].undo(change_from_json(c)) for c in reversed(rem.changes)]
        except (ActionError, KeyError) as e:
            rt.audit(rem.id, "undo_refused", actor.tag, reason=str(e), **actor.audit())
            return Decision(ok=False, message=say("This remediation cannot be undone"), remediation=rem)
        playbook = rt.playbooks.get(rem.playbook)
        approvers, quorum = (rem.approvers, rem.quorum) if rem.approvers else terms(playbook, self.settings,
                                                                                    fallback=True)
        expires_after = playbook.approval.expires_after if playbook else None
        undo = Remediation(
            id=new_id(), dedup_key=f"undo|{rem.id}", finding_id=rem.finding_id, finding=rem.finding,
            playbook=rem.playbook, risk=rem.risk, resource_id=rem.resource_id, subscription_id=rem.subscription_id,
            state="pending_approval", changes=[change_to_json(c) for c in changes], fingerprint=fingerprint(changes),
            approvers=approvers, quorum=quorum, requester=actor.user_id, created_at=now, updated_at=now,
            expires_at=now + expires_after if expires_after else now, undo_of=rem.id,
            # one request a person asked for: its post job is queued at once (announce never folds an undo
            # into a digest); announced once Slack confirms the message
        )
        stored, created = self.store.create(undo, audit=rt.record(
            undo.id, "approval_requested", actor.tag, undo_of=rem.id, fingerprint=undo.fingerprint,
            changes=len(changes), reason="undo requested", **actor.audit(), state=undo.state))
        if not created:
            return Decision(ok=False, message=say("An undo of this remediation is already waiting for approval"),
                            remediation=stored)
        rt.audit(rem.id, "undo_requested", actor.tag, undo=stored.id, **actor.audit())
        rt.enqueue(PostJob(remediation_id=stored.id))
        return Decision(ok=True, remediation=stored,
                        message=say("Undo requested; it needs ", requirement_text(stored, self.settings)))

    def _undo_refusal(self, rem: Remediation | None, actor: Actor, now: datetime) -> Text | None:
        if rem is None:
            return say("This remediation no longer exists")
        if rem.undo_of:
            return say("An undo cannot itself be undone")
        if rem.state != "applied":
            return say(f"Only an applied remediation can be undone; this one is {rem.state.replace('_', ' ')}")
        org = org_reason(actor, self.settings)
        if org is not None:
            return say(org)
        who = undo_requester_reason(actor, rem, self.settings, self._rt.directory)
        if who is not None:
            return who
        if not undo_available(rem, self.settings):
            return say("This remediation cannot be undone: not every change it made is reversible")
        applied_at = next((e.at for e in reversed(self.store.audit_log(rem.id)) if e.event == "applied"),
                          rem.updated_at)
        closes = applied_at + self.settings.undo_window
        if now >= closes:
            return say(f"The undo window closed at {when(closes)}")
        return None

    # -- pause ------------------------------------------------------------------------------
    def pause(self, actor: Actor) -> Decision:
        reason = admin_reason(actor, self.settings, self._rt.directory)
        if reason is not None:
            self._rt.audit(None, "pause_refused", actor.tag, reason=reason.plain(), **actor.audit())
            return Decision(ok=False, message=reason)
        if self.paused():
            return Decision(ok=True, message=say("Already paused"))
        self.store.set_flag(PAUSE_FLAG, f"{actor.user_id} {self._rt.clock().isoformat()}")
        self._rt.audit(None, "paused", actor.tag, **actor.audit())
        return Decision(ok=True, message=say("Paused: nothing will be applied, automatically or after approval, "
                                             "until /remediate resume"))

    def resume(self, actor: Actor) -> Decision:
        reason = admin_reason(actor, self.settings, self._rt.directory)
        if reason is not None:
            self._rt.audit(None, "resume_refused", actor.tag, reason=reason.plain(), **actor.audit())
            return Decision(ok=False, message=reason)
        if not self.paused():
            return Decision(ok=True, message=say("Not paused"))
        self.store.set_flag(PAUSE_FLAG, None)
        self._rt.audit(None, "resumed", actor.tag, **actor.audit())
        self._rt.enqueue(ResumeJob())
        return Decision(ok=True, message=say("Resumed: approved remediations will be applied now"))

    def paused(self) -> bool:
        return self._rt.paused()

    def doctor(self, actor: Actor, *, slack: SlackChecks | None = None) -> Decision:
        """``/remediate doctor`` (admins): ``remediator doctor``'s checks on this running deployment
        (the ``preflight`` it was given), with ``slack``: the Slack side's checks."""
        reason = admin_reason(actor, self.settings, self._rt.directory, doing="run the preflight")
        if reason is not None:
            self._rt.audit(None, "doctor_refused", actor.tag, reason=reason.plain(), **actor.audit())
            return Decision(ok=False, message=reason)
        if self._preflight is None:
            return Decision(ok=False, message=say("The preflight is not available here; run `remediator doctor`."))
        report = self._preflight(slack=slack)
        self._rt.audit(None, "doctor", actor.tag, passed=report.passed, failed=list(report.failed), **actor.audit())
        return Decision(ok=report.passed, message=say(report.text))

    # -- queries ----------------------------------------------------------------------------
    def get(self, remediation_id: str) -> Remediation | None:
        return self.store.get(remediation_id)

    def pending(self) -> list[Remediation]:
        return self.store.list(states=("pending_approval",))

    def quarantined(self) -> int:
        """How many stored rows or queued messages could not be decoded and were quarantined."""
        return self.store.quarantine_count()

    def requirement(self, remediation: Remediation) -> Need:
        """What approval of a pending request still needs: who may approve, how many, who has (data;
        ``Need.text()`` says it, naming people only by their validated ids)."""
        return need(remediation, self.settings)

    def audit_trail(self, remediation_id: str | None = None) -> list[AuditEvent]:
        return self.store.audit_log(remediation_id)

    def evidence_summary(self, period: Any, *, now: datetime | None = None) -> dict[str, int]:
        """The totals of the evidence report for ``period`` (``/remediate report``), by the
        ``evidence`` port it was given; ``LookupError`` without one."""
        if self._evidence is None:
            raise LookupError("this engine was built without the evidence report (the evidence port)")
        return dict(self._evidence(period, now=now or self._rt.clock()))

    # -- worker -----------------------------------------------------------------------------
    def work(self, *, max_jobs: int | None = None, threads: int = 1) -> int:
        """Dequeue and handle jobs until the queue has no visible job (or ``max_jobs``), on ``threads``
        threads (each stops when it finds the queue empty).

        A job is hidden for ``lock_ttl`` and, while its handler runs, kept hidden (``Store.extend``
        every ``lock_ttl / 3``: ``remediator.lifecycle.lease.JobDelivery``), so a long job is never
        delivered twice at once and a killed worker's job comes back within ``lock_ttl``. A job whose
        handler raises is left in the queue (redelivered after the visibility timeout, until it is
        poison); the loop moves on to the next one.
        """
        count, lock = [0], threading.Lock()
        if threads <= 1:
            self._work_loop(max_jobs, count, lock)
            return count[0]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="remediator-worker") as pool:
            for future in [pool.submit(self._work_loop, max_jobs, count, lock) for _ in range(threads)]:
                future.result()
        return count[0]

    def _work_loop(self, max_jobs: int | None, count: list[int], lock: threading.Lock) -> None:
        visibility = self.settings.lock_ttl.total_seconds()
        while True:
            with lock:
                if max_jobs is not None and count[0] >= max_jobs:
                    return
                count[0] += 1  # a slot for the job about to be taken
            job = self.store.dequeue(visibility_seconds=visibility)
            if job is None:
                with lock:
                    count[0] -= 1
                return
            delivery = JobDelivery(self.store, job, visibility)  # hidden for as long as it runs
            try:
                with keep_alive(visibility / 3, delivery.extend):
                    self.handle(job)
            except Exception:
                log.exception("job %s (%s) failed; it will be redelivered", job.id, job.kind)
                continue
            self.store.complete(delivery.job)  # its latest receipt

    def handle(self, job: Job) -> None:
        self._worker.handle(job)

    def sweep(self) -> int:
        """Expire overdue requests, send due reminders, and re-enqueue applies that were lost
        (an ``approved``/``applying`` remediation untouched for longer than ``lock_ttl`` whose
        resource no worker holds a lease on, e.g. after a
        crash between the approval and its enqueue). Returns how many remediations it touched.
        Also the intake's safety net (``_sweep_intake``), which touches no remediation, and last the
        audit trail's anchor over every chain written since the previous sweep (``Store.anchor``)."""
        rt = self._rt
        now = rt.clock()
        touched = 0
        for rem in self.store.list(states=("pending_approval",), limit=100_000):
            if rem.expires_at is not None and now >= rem.expires_at:
                touched += self._expire(rem)
                continue
            due = self._reminder_due(rem)
            if due is not None and not rem.reminded and now >= due:
                new = self.store.update(rem, reminded=True, audit=rt.record(rem.id, "reminded", "system",
                                                                            expires_at=when(rem.expires_at)))
                if new is not None:
                    touched += 1
                    rt.reply(new, "reminder", f"Reminder: this request still needs approval; it expires at "
                                              f"{when(rem.expires_at)}.")
        self._sweep_intake(now)
        if not rt.paused():
            for rem in self.store.list(states=("approved", "applying"), limit=100_000):
                if now - rem.updated_at >= self.settings.lock_ttl and not self._being_applied(rem):
                    new = self.store.update(rem, updated_at=now, audit=rt.record(rem.id, "apply_requeued", "system",
                                                                                 state=rem.state))
                    if new is not None:
                        touched += 1
                        rt.enqueue(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint, asked=bool(rem.votes)))
        self.store.anchor()
        return touched

    def _being_applied(self, rem: Remediation) -> bool:
        """Whether a live worker holds the lease on the remediation's resource (it renews it while its
        apply runs, however long that takes): found by trying to take it, and giving it back at once."""
        key = "resource:" + ids.key(rem.resource_id)
        owner = f"sweep:{secrets.token_hex(8)}"
        if self.store.acquire_lease(key, owner, 1.0) is None:
            return True
        self.store.release_lock(key, owner)
        return False

    def _sweep_intake(self, now: datetime) -> None:
        """The intake's safety net: plan jobs for findings waiting longer than ``lock_ttl`` and
        ``INTAKE_GRACE`` (their job
        was lost, e.g. a crash between storing them and queueing it on Azure, where that is not one
        transaction), an announce job when a request has waited past ``group_wait`` + ``lock_ttl``
        without a confirmed message (unless its next attempt is scheduled already); the inbox
        forgets rows planned more than ``INBOX_RETENTION`` ago, the counters windows older than
        ``COUNTER_RETENTION``."""
        rt, ttl = self._rt, self.settings.lock_ttl
        # a waiting finding may be waiting for a retry after transient ARM errors (at most ~8 minutes
        # in all): only one received longer ago than that, or than ``lock_ttl``, has lost its job
        lost = self.store.waiting(received_before=now - max(ttl, INTAKE_GRACE), limit=10_000)
        for chunk in plan_chunks(lost):
            rt.enqueue(PlanJob(finding_ids=tuple(chunk)))
        if lost:
            rt.audit(None, "plan_requeued", "system", findings=len(lost))
        first = self.store.unannounced(limit=1) if rt.chat is not None else []
        oldest = self.store.get(first[0][0]) if first else None
        if oldest is not None and now - oldest.created_at >= self.settings.group_wait + ttl \
                and not _retry_scheduled(oldest, now):
            rt.enqueue(AnnounceJob())
            rt.audit(None, "announce_requeued", "system", oldest=oldest.id)
        self.store.prune_inbox(planned_before=now - INBOX_RETENTION)
        self.store.prune_counters(before=now - COUNTER_RETENTION)

    # -- helpers ----------------------------------------------------------------------------
    def _attempt(self, rem: Remediation | None, actor: Actor, now: datetime) -> Attempt:
        return Attempt(remediation=rem, actor=actor, now=now, settings=self.settings, directory=self._rt.directory)

    def _refused(self, rem: Remediation | None, requested: str, actor: Actor, refusal: Refusal | None,
                 event: str) -> Decision:
        check = refusal.check if refusal else "open"
        reason = refusal.reason if refusal else say("This request no longer exists")
        if check == "not_expired" and rem is not None:
            self._expire(rem)
        self._rt.audit(rem.id if rem else None, event, actor.tag, check=check, reason=reason.plain(),
                       requested_id=requested[:64], **actor.audit())
        return Decision(ok=False, message=reason, remediation=rem)

    def _enqueue_update(self, rem: Remediation) -> None:
        if not rem.message.get("digest"):
            self._rt.enqueue(UpdateJob(remediation_id=rem.id))

    def _expire(self, rem: Remediation) -> int:
        rt = self._rt
        unposted = {} if rem.announced or not rem.posting.get("error") else {
            "unposted": f"the approval message was never posted: {rem.posting.get('error')} "
                        f"({rem.posting.get('attempts', 0)} attempts)"}
        new = rt.move(rem, "expired", from_states=("pending_approval",), updated_at=rt.clock(),
                      audit=rt.record(rem.id, "expired", "system", expires_at=when(rem.expires_at),
                                      approvals=len(approvals(rem)), **unposted))
        if new is None:
            return 0
        rt.ended(new)
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
