"""The ``apply`` job: exactly what was approved is written, verified and audited, or nothing is.

Apply, step by step (``Applier.apply``, the ``apply`` job):

1. Skip unless the remediation is ``approved`` (or ``applying``: a crashed earlier delivery) and the
   job's fingerprint is the approved one. Paused: leave it ``approved`` (``resume`` re-enqueues).
2. Lease the finding's resource and every changed resource (``Leases``: ``acquire_lease`` with
   ``lock_ttl``, in sorted order, each with its fencing token); a busy one re-enqueues the job with
   a short delay. The leases are renewed in the background every ``lock_ttl / 3`` while the job runs
   (``keep_alive``) and checked immediately before every ARM write (``fenced``: the grant request and
   the write, in the ARM clients' pipeline; ``remediator.lifecycle.lease``).
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
   ``finally``) → ``verify``; each grant, write and release is audited in that order (the write
   is recorded while the grant still holds). Any exception →
   ``failed`` with a one-line reason and a reply; never ``applied``. Except:

   * the store fails (an outage, a lock held too long: ``StoreUnavailable``, raised by the store
     calls of the apply, ``store_call``, so it is told from an ARM failure by where it came from,
     not by its type): nothing is decided; the job raises, is delivered again, and that delivery
     recovers from ``applying`` (below): a write that landed verifies → one ``applied``, no second
     write;

   * the fencing check fails (``LeaseLost``: this worker stalled past its lease and another took
     it): nothing more is written; ``lease_lost`` is audited and the remediation is left to the
     lease holder (the job is queued again, ``lock_ttl`` later, in case nobody holds it);
   * ARM refuses the write conditional on the ETag the plan read (412, ``ChangedSincePlan``): the
     resource is re-planned; the same approved plan (it changed elsewhere) is written once more on
     the current document, anything else ends as the re-check says (``stale``, asked again;
     ``no_change``; …), never ``failed``;
   * the write's answer is lost (read timeout, connection reset: ``answer_lost``): the resource is
     re-read and verified before anything is declared; it landed → go on as written; it did not →
     written once more under the same fencing, and a second lost answer that does not verify →
     ``failed``.
5. ``applying → applied``; the reply says "applied and verified", with Undo when every action is
   reversible and the undo window is open. An applied undo moves the original to ``rolled_back``.

Crash recovery: a delivery that finds ``applying`` (its lock free or expired) re-plans. If the
first run wrote everything, the plan is empty and the approved changes all verify → ``applied``
(audited as recovered), with no second write; if they do not verify, someone else fixed it →
``no_change``; if the first run wrote only some changes, the remainder is a different plan →
``stale`` and a human approves the rest. An ``apply`` job delivered more than ``max_deliveries``
times is poison: its remediation becomes ``failed`` (``Applier.fail``, called by ``Worker.poison``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from remediator import ids, telemetry
from remediator.actions import REGISTRY
from remediator.actions.base import Action, ApplyResult, GrantNeed, label
from remediator.actions.change import Change, with_etag
from remediator.azure.fence import LeaseLost, answer_lost, fenced, unfenced
from remediator.azure.reader import LiveState
from remediator.errors import ActionError, ChangedSincePlan, StoreUnavailable, VerifyError, error_line
from remediator.lifecycle.approval import approvals, is_member, when
from remediator.lifecycle.codec import change_from_json, finding_from_json
from remediator.lifecycle.jobs import ApplyJob, PostJob, UpdateJob
from remediator.lifecycle.lease import Leases, keep_alive
from remediator.lifecycle.model import AuditEvent, Remediation, State
from remediator.lifecycle.opening import build, opened, opening_records
from remediator.lifecycle.runtime import CAS_RETRIES, Runtime, store_call, undo_available
from remediator.planning.result import Result
from remediator.privilege.elevation import Grant, Release, Ticket

log = logging.getLogger("remediator.worker")

LOCK_RETRY_SECONDS = 5.0  # at most this between looks at a resource another apply holds
LOCK_RETRY_FIRST = 0.5  # the first look: an apply holds a resource for about a second (doubling to the above)
MAX_REASKS = 3  # a plan that keeps drifting is asked again at most this often (``attempt`` counts)
MAX_CONFLICTS = 1  # writes refused on a stale ETag retried on the current document (same plan) this often
RESOLVED: tuple[State, ...] = ("approved", "applying")
PIM_STRATEGIES = frozenset({"pim-assign", "pim-activate"})


def outstanding_requests(trail: Iterable[AuditEvent]) -> set[str]:
    """Grant request ids a trail records as requested (``grant_requested``) and not released since
    (no ``released`` record names them as its ``grant_request_id``)."""
    requested: set[str] = set()
    for e in trail:
        if e.event == "grant_requested" and e.detail.get("request_id"):
            requested.add(str(e.detail["request_id"]))
        elif e.event == "released" and e.detail.get("grant_request_id"):
            requested.discard(str(e.detail["grant_request_id"]))
    return requested


def _first_to_expire(grants: Sequence[Grant]) -> Grant:
    """The grant a write runs under (its retries stop before it expires): of several, the one that
    expires first (the write needs them all)."""
    timed = [g for g in grants if g.expires_at is not None]
    return min(timed, key=lambda g: g.expires_at or datetime.max.replace(tzinfo=UTC)) if timed else grants[0]


def _stopped_at(changes: Sequence[Change], written: int) -> str:
    """Where a plan of several changes stopped (`` (stopped at change 2 of 3: …; not applied: …)``), so the
    thread and the audit say what was done and what was not; "" for a plan of one change."""
    if len(changes) < 2 or written >= len(changes):
        return ""

    def what(c: Change) -> str:
        return f"{c.operation} {label(c.resource_id)}"
    done = f"; done: {', '.join(what(c) for c in changes[:written])}" if written else ""
    rest = changes[written + 1:]
    skipped = f"; not applied: {', '.join(what(c) for c in rest)}" if rest else ""
    return f" (stopped at change {written + 1} of {len(changes)}, {what(changes[written])}{done}{skipped})"


# --------------------------------------------------------------------------------------------
# Verdicts of the pre-apply check


def grants_alive(trail: Sequence[AuditEvent], now: datetime | None = None) -> list[str]:
    """What a remediation's trail says may still be granted (``/remediate status``), one line each:
    grant requests recorded and not released (a crashed apply; its recovery releases them), with
    their expiry, and grants PIM would not remove yet (left to expire) until their expiry passes."""
    now = now or datetime.now(UTC)
    expiry: dict[str, datetime] = {}
    for e in trail:
        if e.event == "elevated" and e.detail.get("request_id") and e.detail.get("expires_at"):
            try:
                expiry[str(e.detail["request_id"])] = datetime.fromisoformat(str(e.detail["expires_at"]))
            except ValueError:
                continue
    lines = [f"PIM grant request {rid} is not released (a crashed apply; its recovery releases it)"
             + (f"; it expires at {expiry[rid].isoformat(timespec='minutes')}" if rid in expiry else "")
             for rid in sorted(outstanding_requests(trail))]
    for e in trail:
        rid = str(e.detail.get("grant_request_id") or "")
        if e.event == "released" and e.detail.get("status") == "LeftToExpire" and expiry.get(rid, now) >= now:
            until = expiry[rid].isoformat(timespec="minutes") if rid in expiry else "its end"
            lines.append(f"PIM grant {rid or '?'} on {e.detail.get('scope')} is left to expire at {until} "
                         f"({e.detail.get('detail')})")
    return lines


@dataclass(frozen=True, slots=True)
class _Go:
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class _End:
    state: State
    reason: str
    reask: Result | None = None
    events: tuple[str, ...] = field(default=())


def _etag_of(doc: Mapping[str, Any] | None) -> str | None:
    etag = doc.get("etag") if doc is not None else None
    return etag if isinstance(etag, str) and etag else None


class Applier:
    """Handles ``apply`` jobs and ends remediations that cannot be applied (see the module docstring)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def apply(self, job: ApplyJob) -> None:
        rt = self.rt
        rem = rt.store.get(job.remediation_id)
        if rem is None or rem.state not in RESOLVED:
            return
        if job.fingerprint != rem.fingerprint:
            rt.audit(rem.id, "apply_skipped", "worker", reason="the job is for another plan")
            return
        if rt.paused():
            rt.audit(rem.id, "apply_deferred", "worker", reason="remediation is paused; resume applies it")
            return
        keys = sorted({"resource:" + ids.key(rem.resource_id)}
                      | {"resource:" + ids.key(str(c["resource_id"])) for c in rem.changes})
        ttl = rt.settings.lock_ttl.total_seconds()
        leases = Leases(rt.store, f"worker:{uuid.uuid4().hex}", ttl)
        if not leases.acquire(keys):  # another change of the resource is being applied: follow it promptly
            rt.enqueue(replace(job, busy=job.busy + 1),
                       delay=min(LOCK_RETRY_SECONDS, LOCK_RETRY_FIRST * 2 ** min(job.busy, 8)))
            return
        try:
            with keep_alive(ttl / 3, leases.renew):
                self._apply_locked(rem.id, leases, job)
        finally:
            leases.release()

    def _apply_locked(self, rid: str, leases: Leases, job: ApplyJob) -> None:
        rt = self.rt
        rem = rt.store.get(rid)
        if rem is None or rem.state not in RESOLVED:
            return
        recovering = rem.state == "applying"
        revoked = self._approval_revoked(rem)  # MembershipUnknown propagates: the job is retried later
        if revoked is not None:
            self.fail(rem, revoked)
            return
        try:
            verdict = self._check_undo(rem, recovering) if rem.undo_of else self._check_plan(rem, recovering)
        except StoreUnavailable:
            raise  # the store, not the resource: decides nothing; the job is delivered again
        except Exception as e:  # a failed state read: loud, nothing written
            log.exception("pre-apply check of %s failed", rem.id)
            verdict = _End("failed", f"could not re-check the resource before applying: {error_line(e)}")
        if isinstance(verdict, _End):
            if recovering:
                self.release_leftovers(rem)
            self._end(rem, verdict)
            return
        started = rt.record(rem.id, "applying", "worker", fingerprint=rem.fingerprint, changes=len(verdict.changes),
                            elevation=rt.elevator.strategy, recovered=recovering, state="applying")
        if not recovering:
            moved = rt.move(rem, "applying", from_states=("approved",), audit=started)
            if moved is None:
                return  # someone else is applying it
            rem = moved
        else:  # recovering: recorded by compare-and-set on what was read, so a first worker that woke
            # and ended it meanwhile is never followed by an "applying" record (nor by a second write)
            resumed = self._resume(rem, started)
            if resumed is None:
                return
            rem = resumed
        with telemetry.current().span("remediator.apply", parent=rem.trace_context, remediation_id=rem.id,
                                      playbook=rem.playbook, resource=rem.resource_id,
                                      changes=len(verdict.changes)) as span:
            if self._write_all(rem, verdict, leases, job, span, recovering=recovering):
                self._applied(rem, "applied and verified")

    def _resume(self, rem: Remediation, started: AuditEvent) -> Remediation | None:
        """Record the recovering delivery's start on ``rem`` while it is still ``applying`` (re-reading
        after a concurrent field update); None once it is not: someone else ended it."""
        rt = self.rt
        current: Remediation | None = rem
        for _ in range(CAS_RETRIES):
            if current is None or current.state != "applying":
                return None
            resumed = rt.store.update(current, updated_at=rt.clock(), audit=started)
            if resumed is not None:
                return resumed
            current = rt.store.get(rem.id)
        return None

    def _write_all(self, rem: Remediation, verdict: _Go, leases: Leases, job: ApplyJob, span: telemetry.Span, *,
                   recovering: bool) -> bool:
        """Write the verdict's changes under the fencing check; True when all were written and verified
        (anything else ended the remediation, or left it to the lease holder)."""
        rt = self.rt
        recorded = rt.store.audit_log(rem.id) if recovering else []  # grant requests made before a crash
        changes, conflicts, written = verdict.changes, 0, 0
        lost = False  # the lease: then what a crashed delivery left is the lease holder's to release
        unwritten = False  # the trail (the store failed): the next delivery recovers and releases
        try:
            while True:
                try:
                    with fenced(leases.check):
                        for change in changes:
                            self._apply_one(rem, change, recorded)
                            written += 1
                except LeaseLost as e:  # another worker holds the resource now: it finishes the remediation
                    span.error(f"lease lost: {e}")
                    rt.audit(rem.id, "lease_lost", "worker", reason=str(e), owner=leases.owner)
                    rt.enqueue(job, delay=leases.ttl)  # in case nobody holds it: the lease expires by then
                    lost = True
                    return False
                except ChangedSincePlan as e:  # written by someone else since the re-check: never failed
                    span.error(error_line(e))
                    conflicts += 1
                    again = self._changed_since_plan(rem, e, retry=conflicts <= MAX_CONFLICTS, wrote=written > 0)
                    if again is None:
                        return False
                    changes = again.changes  # the same approved plan on the current document: once more
                    continue
                except StoreUnavailable as e:  # the trail could not be written: a fault delays, never decides
                    span.error(error_line(e))
                    log.warning("apply of %s interrupted: %s; it is delivered again and recovers from "
                                "'applying'", rem.id, error_line(e))
                    unwritten = True
                    raise
                except Exception as e:  # every failure is loud: failed, with the reason, never applied
                    if not isinstance(e, ActionError):
                        log.exception("apply of %s failed", rem.id)
                    span.error(error_line(e))
                    self.fail(rem, error_line(e) + _stopped_at(changes, written))
                    return False
                break
        finally:
            if recovering and not lost and not unwritten:
                self.release_leftovers(rem)
        return True

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

    def _apply_one(self, rem: Remediation, change: Change, recorded: Sequence[AuditEvent] = ()) -> None:
        rt = self.rt
        action = REGISTRY.get(change.action)
        if action is None:
            raise ActionError("unknown action", action=change.action, resource_id=change.resource_id)
        tel = telemetry.current()
        granted: list[Grant] = []
        granted_problem: str | None = None
        try:
            for need in action.grants(change):  # every scope the write needs; each released below, always
                granted.append(self._elevate(rem, action, change, need, recorded))
            grant = _first_to_expire(granted)
            result = self._write(rem, action, change, grant)
            # recorded while the grant holds, so the trail reads elevated, change_applied, released
            self._trail(rem.id, "change_applied", action=change.action, operation=change.operation,
                        resource_id=change.resource_id, detail=result.detail)
            if action.verify_under_grant:  # its verify reads what only the grant's role may read
                executor_view = LiveState(rt.clients)
                try:
                    granted_problem = rt.elevator.run(grant, lambda: action.verify(executor_view, change),
                                                      clients=rt.clients)
                except ActionError as e:  # written, but not verified: a verify failure, not a failed write
                    granted_problem = error_line(e)
        finally:
            for held in reversed(granted):
                try:
                    with unfenced():  # removing a grant is always allowed, lease or not
                        released = rt.elevator.release(held)
                except Exception:  # the contract says release never raises; log it if one does
                    log.exception("release of grant on %s failed", held.scope)
                    released = None
                if released is not None:
                    self._trail(rem.id, "released", **released.audit())
        with tel.span("remediator.verify", remediation_id=rem.id, playbook=rem.playbook,
                      resource=change.resource_id) as span:
            problem = granted_problem if action.verify_under_grant else action.verify(rt.state, change)
            if problem is not None:
                span.error(problem)
                raise VerifyError(f"verify failed: {problem}", action=change.action, resource_id=change.resource_id)
        self._trail(rem.id, "change_verified", resource_id=change.resource_id)

    def _trail(self, rid: str, event: str, **detail: Any) -> None:
        """Audit a step of the apply; a store that fails raises ``StoreUnavailable`` (not the apply's failure)."""
        with store_call(f"record {event!r} of {rid}"):
            self.rt.audit(rid, event, "worker", **detail)

    def _elevate(self, rem: Remediation, action: Action[Any], change: Change, need: GrantNeed,
                 recorded: Sequence[AuditEvent]) -> Grant:
        """One grant of a change (requested, audited ``elevated``); ``ActionError``: not granted."""
        rt = self.rt
        tel = telemetry.current()
        with tel.span("remediator.elevation", remediation_id=rem.id, playbook=rem.playbook,
                      resource=change.resource_id, strategy=rt.elevator.strategy) as span, \
                telemetry.Stopwatch() as took:
            try:
                ticket = Ticket(remediation_id=rem.id, fingerprint=rem.fingerprint,
                                approvers=tuple(v.user_id for v in approvals(rem)),
                                request_id=self._request_id(rem, action.name, change, recorded, need))
                grant = rt.elevator.elevate(action=action, change=change, ticket=ticket, need=need)
            except Exception:
                tel.pim_grant(time.monotonic() - took.started, rt.elevator.strategy, "failed")
                raise
            span.set(role=grant.role_name, scope=grant.scope)
        tel.pim_grant(took.seconds, rt.elevator.strategy, "granted")
        self._trail(rem.id, "elevated", **grant.audit(), **({"for": need.why} if need.why else {}))
        return grant

    def _write(self, rem: Remediation, action: Action[Any], change: Change, grant: Grant) -> ApplyResult:
        """``action.apply`` under the grant; a write whose answer was lost is re-read and verified
        before anything is declared (see the module docstring)."""
        rt = self.rt

        def write() -> ApplyResult:
            return rt.elevator.run(grant, lambda: action.apply(rt.clients, change), clients=rt.clients)

        for attempt in (1, 2):
            try:
                return write()
            except Exception as e:
                if not answer_lost(e):
                    raise
                lost = error_line(e)
            log.warning("the answer to the write on %s was lost (%s); re-reading it", change.resource_id, lost)
            problem = self._verify_now(action, change, grant)
            self._trail(rem.id, "write_answer_lost", resource_id=change.resource_id, error=lost,
                        attempt=attempt, landed=problem is None, **({"problem": problem} if problem else {}))
            if problem is None:
                return ApplyResult(change=change, detail=f"the answer to the write was lost ({lost}); re-read: "
                                                         "it landed")
        raise ActionError(f"the answer to the write was lost twice ({lost}) and the resource does not show it: "
                          f"{problem}", action=change.action, resource_id=change.resource_id)

    def _verify_now(self, action: Action[Any], change: Change, grant: Grant) -> str | None:
        """``verify`` from a fresh read (under the grant when the action's verify needs it)."""
        rt = self.rt
        try:
            if action.verify_under_grant:
                view = LiveState(rt.clients)
                return rt.elevator.run(grant, lambda: action.verify(view, change), clients=rt.clients)
            return action.verify(LiveState(rt.clients), change)
        except ActionError as e:
            return error_line(e)

    def _changed_since_plan(self, rem: Remediation, error: ChangedSincePlan, *, retry: bool,
                            wrote: bool) -> _Go | None:
        """ARM refused a write conditional on the plan's ETag: re-plan. The same approved plan (the
        resource changed elsewhere, not where the plan writes) → ``_Go`` on the current document (once:
        ``retry``); anything else ends as the re-check says (``stale`` and asked again, ``no_change``,
        …; after some of the changes were ``wrote`` here, as a recovery does: all of them verify →
        ``applied``), never ``failed``."""
        rt = self.rt
        current = rt.store.get(rem.id) or rem
        reason = (f"the resource was written by someone else while this change was applied "
                  f"({error_line(error)})")
        try:
            verdict = self._check_plan(current, recovering=wrote) if not current.undo_of else None
        except Exception as e:
            log.warning("re-plan after a 412 on %s failed: %s", rem.id, error_line(e))
            verdict = None
        rt.audit(rem.id, "write_conflict", "worker", reason=error_line(error),
                 replanned=type(verdict).__name__.strip("_").lower() if verdict is not None else "unknown")
        if isinstance(verdict, _Go) and retry:
            return verdict
        if not isinstance(verdict, _End) or verdict.state == "failed":
            verdict = _End("stale", reason)
        self._end(current, verdict)
        return None

    def _request_id(self, rem: Remediation, action: str, change: Change, recorded: Sequence[AuditEvent],
                    need: GrantNeed | None = None) -> str | None:
        """The name of this change's grant request, audited (``grant_requested``) before it is made; a
        delivery recovering a crashed one reuses the name recorded for the same change and not
        released, so the grant it may have left is recognised as this change's own. None for a
        strategy that makes no requests (standing)."""
        rt = self.rt
        if rt.elevator.strategy not in PIM_STRATEGIES:
            return None
        open_ids = outstanding_requests(recorded)
        for e in reversed(recorded):
            rid = str(e.detail.get("request_id") or "")
            if e.event == "grant_requested" and rid in open_ids and e.detail.get("action") == action \
                    and ids.same(str(e.detail.get("resource_id") or ""), change.resource_id) \
                    and (need is None or not e.detail.get("scope") or ids.same(str(e.detail["scope"]), need.scope)) \
                    and (need is None or not e.detail.get("role_id") or str(e.detail["role_id"]).lower()
                         == need.role.id.lower()):  # two roles at one scope (a Modify definition's) are two grants
                return rid
        request_id = str(uuid.uuid4())
        where = {} if need is None else {"scope": need.scope, "role": need.role.name, "role_id": need.role.id}
        self._trail(rem.id, "grant_requested", request_id=request_id, action=action,
                    resource_id=change.resource_id, strategy=rt.elevator.strategy, **where)
        return request_id

    def release_leftovers(self, rem: Remediation) -> list[Release]:
        """Release every grant request this remediation recorded (``grant_requested``) and did not
        release: what a crashed delivery left. Each release is audited (``released``, ``leftover``);
        one whose assignment ended already, or was never made, says so (``NotActive``)."""
        rt = self.rt
        trail = rt.store.audit_log(rem.id)
        outstanding = outstanding_requests(trail)
        out: list[Release] = []
        for e in trail:
            rid = str(e.detail.get("request_id") or "")
            if e.event != "grant_requested" or rid not in outstanding:
                continue
            outstanding.discard(rid)
            action = REGISTRY.get(str(e.detail.get("action") or ""))
            resource = str(e.detail.get("resource_id") or "")
            if action is None or not resource:
                continue
            scope = next((str(g.detail.get("scope")) for g in trail if g.event == "elevated"
                          and g.detail.get("request_id") == rid and g.detail.get("scope")), None)
            if scope is None:
                scope = str(e.detail.get("scope") or "") or action.grant_scope(
                    Change(action=action.name, resource_id=resource, operation="update", before=None, after=None))
            grant = Grant(strategy=str(e.detail.get("strategy") or rt.elevator.strategy),
                          role_name=str(e.detail.get("role") or action.role.name),
                          role_id=str(e.detail.get("role_id") or action.role.id), scope=scope, request_id=rid,
                          status="Recorded")
            try:
                released = rt.elevator.release(grant)
            except Exception:  # the contract says release never raises; log it if one does
                log.exception("release of leftover grant %s failed", rid)
                continue
            if released is not None:
                rt.audit(rem.id, "released", "worker", leftover=True, **released.audit())
                out.append(released)
        return out

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
        with store_call(f"read {rem.undo_of}, the remediation to undo"):
            original = self.rt.store.get(rem.undo_of or "")
        if original is None:
            return _End("failed", "the remediation to undo no longer exists")
        problems = self._unverified([change_from_json(c) for c in original.changes])
        if problems:
            return _End("stale", f"the resource changed since remediator wrote it ({problems[0]}); undoing "
                                 "would overwrite that, so nothing was applied")
        # the undo's writes are conditional on the documents just verified (their ETags, where they have one)
        return _Go(tuple(with_etag(c, _etag_of(self.rt.state.get(c.resource_id))) for c in undo))

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
            self.fail(rem, verdict.reason)
            return
        rt = self.rt
        new = rt.move(rem, verdict.state, from_states=RESOLVED, error=verdict.reason, updated_at=rt.clock(),
                      audit=rt.record(rem.id, verdict.state, "worker", reason=verdict.reason))
        if new is None:
            return
        rt.ended(new)
        rt.enqueue(UpdateJob(remediation_id=rem.id))
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
        # its post job is queued at once (announced once Slack confirms the message)
        opening = build(rt, finding, result, attempt=stale.attempt + 1, trace_context=stale.trace_context)
        stored, created = rt.store.create(opening.remediation, audit=opening_records(
            rt, opening.remediation, "the resource changed after approval; asking again", actor="worker",
            refusal=opening.refusal, replaces=stale.id))
        if not created:
            rt.audit(stale.id, "reask_deduplicated", "worker", open_remediation=stored.id)
            return stored
        rt.audit(stale.id, "replaced", "worker", replaced_by=stored.id)
        stored = opened(rt, stored)
        if stored.state == "pending_approval":
            rt.enqueue(PostJob(remediation_id=stored.id))
        return stored

    def fail(self, rem: Remediation, reason: str) -> None:
        rt = self.rt
        log.error("remediation %s failed: %s", rem.id, reason)
        if rem.state == "applying":  # given up (a poison job): what its crashed deliveries left is released
            try:
                self.release_leftovers(rem)
            except Exception:
                log.exception("could not release the grants %s left", rem.id)
        new = rt.move(rem, "failed", from_states=("approved", "applying", "pending_approval", "planned"),
                      error=reason, updated_at=rt.clock(), audit=rt.record(rem.id, "failed", "worker", reason=reason))
        if new is None:
            return
        rt.ended(new)
        rt.enqueue(UpdateJob(remediation_id=rem.id))
        rt.reply(new, "failed", f"Failed: {reason}")

    def _applied(self, rem: Remediation, reason: str, *, recovered: bool = False) -> None:
        rt = self.rt
        now = rt.clock()
        new = rt.move(rem, "applied", from_states=("applying",), error=None, updated_at=now,
                      audit=rt.record(rem.id, "applied", "worker", reason=reason, recovered=recovered,
                                      fingerprint=rem.fingerprint))
        if new is None:
            return
        rt.ended(new)
        rt.enqueue(UpdateJob(remediation_id=rem.id))
        undo = undo_available(new, rt.settings)
        n = len(new.changes)
        rt.reply(new, "applied", f"{'Undone' if rem.undo_of else 'Applied'} and verified: {n} change"
                                 f"{'' if n == 1 else 's'}." + (" (recovered after a restart)" if recovered else ""),
                 undo_available=undo)
        if rem.undo_of:
            original = rt.store.get(rem.undo_of)
            if original is not None:
                back = rt.move(original, "rolled_back", from_states=("applied",), updated_at=now,
                               audit=rt.record(original.id, "rolled_back", "worker", undo=rem.id))
                if back is not None:
                    rt.ended(back)
                    rt.enqueue(UpdateJob(remediation_id=original.id))
                    rt.reply(back, "rolled_back", f"Rolled back at {when(now)}: the undo was approved and verified.")

