"""Opening a remediation: what a planned result becomes, and the audit that records why.

``build`` takes the decision for a planned ``Result``: ``exempt``/``no_change`` (final, no dedup
slot), ``pending_approval`` for Slack playbooks and for ``approval: auto`` ones that may not apply
now, and ``approved`` for auto ones within the hourly budget. It returns an ``Opening``: the
remediation, and for an auto playbook that must ask a human, why (``refusal``: paused, auto off,
not low risk, the budget spent). ``opening_records`` are the audit records that open it (with that
refusal as the reason it asks): the store creates them with it, atomically, or deduplicates both.
``opened`` then acts on the one that was created: queues the apply of an approved one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from remediator import ids
from remediator.actions import REGISTRY
from remediator.actions.change import Change
from remediator.findings import ai
from remediator.findings.model import Finding
from remediator.lifecycle.approval import staffed, terms
from remediator.lifecycle.codec import change_to_json, finding_to_json
from remediator.lifecycle.jobs import ApplyJob
from remediator.lifecycle.model import AuditEvent, Remediation, State
from remediator.lifecycle.runtime import Runtime, with_state
from remediator.planning.result import Result
from remediator.playbooks import Playbook


@dataclass(frozen=True, kw_only=True, slots=True)
class Opening:
    """A remediation to create, and why it asks a human although its playbook is automatic."""

    remediation: Remediation
    refusal: str | None = None


def dedup_key(playbook: str, resource_id: str) -> str:
    return f"{playbook}|{ids.key(resource_id)}"


def remediation_id(generation: str, finding_id: str, playbook: str) -> str:
    """The id of the remediation that one reception of a finding opens with a playbook: derived from
    the inbox row's random ``generation`` (``Inbound.generation``), so a plan job that runs twice
    (redelivered, or twice at once) creates the same remediation once (``Store.create`` returns the
    stored one); as unguessable as a random id (ids are Slack button values): 16 bytes, URL-safe.
    No generation (a row stored by an earlier version): a random id."""
    if not generation:
        return new_id()
    digest = hashlib.sha256("\x00".join((generation, finding_id, playbook)).encode("utf-8")).digest()[:16]
    return _id_text(digest)


def new_id() -> str:
    """A random remediation id (16 bytes, URL-safe text; see ``_id_text``)."""
    return _id_text(secrets.token_bytes(16))


def _id_text(raw: bytes) -> str:
    """16 bytes as the 22 URL-safe base64 characters of an id, never starting with ``-``: an id is
    typed on command lines (``remediator audit ID``), where a leading ``-`` reads as an option. The
    first character's ``-`` becomes ``_`` (one value of 64 folded into another: 16 bytes stay far
    beyond guessing)."""
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    return "_" + text[1:] if text.startswith("-") else text


def weighty(changes: Iterable[Change]) -> list[str]:
    """Why any of ``changes`` is one-way or costs money (``Action.weighs``), one line each."""
    return [w for c in changes if (a := REGISTRY.get(c.action)) is not None and (w := a.weighs(c))]


def build(rt: Runtime, finding: Finding, result: Result, *, attempt: int = 0,
          trace_context: str | None = None, generation: str = "") -> Opening:
    """The remediation a planned ``result`` opens (see the module docstring). The budget is counted
    here, before the store deduplicates: a duplicate may use up a slot it does not apply (the safe
    direction). ``generation``: the inbox row's (``remediation_id``); none → a random id."""
    now = rt.clock()
    playbook = rt.playbooks.get(result.playbook or "")
    state: State
    refusal = None
    if result.outcome == "exempt":
        state = "exempt"
    elif result.outcome == "no_changes":
        state = "no_change"
    elif playbook is not None and playbook.approval.mode == "slack":
        state = "pending_approval"
    elif (refusal := auto_refusal(rt, playbook, result.risk, finding.subscription_id, count=True)) is not None:
        state = "pending_approval"  # an auto playbook that cannot auto-apply now: ask the admins at once
    else:
        state = "approved"  # decided at once: one write, no planned → approved transition
    fallback = playbook is None or playbook.approval.mode != "slack"
    approvers, quorum = terms(playbook, rt.settings, fallback=fallback) if state == "pending_approval" else ((), 1)
    if state == "pending_approval" and weighty(result.changes):
        quorum = max(quorum, 2)  # one-way or cost-bearing: two people decide, whatever the playbook says
        approvers = staffed(approvers, quorum, rt.settings.admins)  # and two people can
    expires = now + playbook.approval.expires_after if state == "pending_approval" and playbook else None
    remediation = Remediation(
        id=remediation_id(generation, finding.id, result.playbook or ""),
        dedup_key=dedup_key(result.playbook or "", finding.resource_id),
        finding_id=finding.id, finding=finding_to_json(finding), playbook=result.playbook or "",
        risk=result.risk or (playbook.risk if playbook else "high"), resource_id=finding.resource_id,
        subscription_id=finding.subscription_id, state=state,
        changes=[change_to_json(c) for c in result.changes], fingerprint=result.fingerprint,
        approvers=approvers, quorum=quorum, created_at=now, updated_at=now, expires_at=expires, attempt=attempt,
        trace_context=trace_context, warnings=tuple(result.warnings),
    )
    return Opening(remediation=remediation, refusal=refusal)


def opening_records(rt: Runtime, rem: Remediation, reason: str, *, actor: str, refusal: str | None = None,
                    **detail: Any) -> tuple[AuditEvent, ...]:
    """The records that open ``rem`` (``refusal``: its ``Opening``'s), to create with it: the opening
    (``OPENING_EVENTS``) and, for one approved at once, its automatic approval; each carries the state
    it was created in."""
    event = {"exempt": "exempt", "no_change": "no_change", "pending_approval": "approval_requested"}.get(
        rem.state, "planned")
    playbook = rt.playbooks.get(rem.playbook)
    if rem.state == "pending_approval" and playbook is not None and playbook.approval.mode == "auto":
        # asked at once (paused, auto off, not low risk): the audited reason is why it asks
        detail = {**detail, "plan": reason, "approvers": list(rem.approvers), "quorum": rem.quorum}
        reason = refusal or auto_refusal(rt, playbook, rem.risk) or reason
    if rem.warnings:  # what the plan could not check: part of what was asked (or auto-approved)
        detail = {**detail, "warnings": list(rem.warnings)}
    evidence = ai.evidence_of(rem.finding)
    if evidence is not None:  # an AI alert: who called what (capped, one line each; prompt text never)
        detail = {**detail, "evidence": evidence.as_audit()}
    records = [rt.record(rem.id, event, actor, playbook=rem.playbook, finding_id=rem.finding_id,
                         resource_id=rem.resource_id, fingerprint=rem.fingerprint, changes=len(rem.changes),
                         reason=reason, controls=list(playbook.controls) if playbook else [], **detail)]
    if rem.state == "approved":
        records.append(rt.record(rem.id, "approved", "auto", fingerprint=rem.fingerprint, risk=rem.risk))
    return with_state(records, rem.state)


def opened(rt: Runtime, rem: Remediation) -> Remediation:
    """Act on a freshly created remediation (its records were written with it): queue the apply of an
    approved one, count a final one."""
    if rem.state == "approved":
        rt.traced_approval(rem, mode="auto")
        rt.enqueue(ApplyJob(remediation_id=rem.id, fingerprint=rem.fingerprint))
    elif rem.state in ("exempt", "no_change"):
        rt.ended(rem)
    return rem


def auto_refusal(rt: Runtime, playbook: Playbook | None, risk: str | None, subscription_id: str | None = None, *,
                 count: bool = False) -> str | None:
    """Why an ``approval: auto`` remediation must ask a human (not low risk, paused, auto off,
    and with ``count`` the subscription's hourly budget, counting this one), or None."""
    if playbook is None or playbook.approval.mode != "auto" or risk != "low":
        return "only low-risk playbooks with approval: auto are applied without asking"
    if rt.paused():
        return "auto-remediation is paused"
    budget = rt.settings.auto_budget_per_hour
    if budget <= 0:
        return "auto-remediation is off (auto_budget_per_hour is 0)"
    if not count:
        return None
    window = rt.clock().replace(minute=0, second=0, microsecond=0)
    if rt.store.incr_counter(f"auto:{(subscription_id or '-').lower()}", window) > budget:
        return (f"the auto-remediation budget of {budget} per hour for subscription "
                f"{subscription_id or '(none)'} is spent")
    return None
