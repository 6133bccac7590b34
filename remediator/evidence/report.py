"""The evidence report: what was found, fixed, by whom, under which grant, how fast, what was
exempted until when, what is still open, and whether the trail is intact, for one period.

The remediations counted are the store's own (``remediation_states``: every remediation, whatever
its trail holds), so a remediation whose records are missing is still counted, and listed under
"Incomplete audit trails" with what is missing (``verify``'s completeness check). What each one
went through comes from one pass over the audit records (the same pass feeds ``verify``), so
memory stays bounded by the number of remediations, not of records: each record is decoded, folded
into a small per-remediation summary, and dropped. Remediation documents are read one at a time
(``Store.get``) for their state, votes and expiry.

Which remediations are in the report: those opened in the period, plus those opened before its
end that are still open now (the backlog an auditor asks about). Outcomes are as of report time.

Definitions (also printed in the report):

* **time to remediate**: from the finding's arrival (``received_at``) to the ``applied`` record;
  median, p90 (nearest rank) and max per severity, for remediations applied in the report;
* **overdue**: still open and either past its approval expiry or older than the severity's target
  (``SLA``: Critical 1 day, High 7, Medium 30, Low and others 90);
* **quorum held**: distinct approving users >= the quorum, none of them the requester; **expiry
  held**: every approval was given before the request expired;
* **findings** are counted by delivery source (the ingest channel), kind and severity: each finding
  that opened a remediation, joined an open one, or failed to plan. Findings no playbook claims are
  not stored, so they are not in the report.
"""

from __future__ import annotations

import difflib
import fnmatch
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from remediator.errors import UsageError
from remediator.evidence.period import Period
from remediator.evidence.verify import VerifyResult, verify
from remediator.lifecycle.chain import ANCHOR_CHAIN, OPENING_EVENTS, ChainRecord
from remediator.lifecycle.model import OPEN_STATES, Remediation
from remediator.lifecycle.reports import EvidenceTotals
from remediator.store import codec

SEVERITIES = ("Critical", "High", "Medium", "Low", "Informational", "Unknown")
SLA = {"Critical": timedelta(days=1), "High": timedelta(days=7), "Medium": timedelta(days=30)}
SLA_DEFAULT = timedelta(days=90)
EXPIRING_WITHIN = timedelta(days=30)
OUTCOMES = ("auto_applied", "approved_applied", "rolled_back", "rejected", "exempt", "stale_reasked", "stale",
            "failed", "withdrawn", "expired", "no_change", "open")
_EXEMPT = re.compile(r"^exempted until (\d{4}-\d{2}-\d{2}) by (.+?): (.*)$", re.S)
_TAG_EXEMPT = "resource tag remediation-exempt: "


class Graph(Protocol):
    """The slice of ``azure.mgmt.resourcegraph.ResourceGraphClient`` the policy snapshot uses."""

    def resources(self, query: Any) -> Any: ...


@dataclass(slots=True)
class _Rem:
    """What the audit says about one remediation (folded record by record)."""

    opened_at: datetime | None = None
    received_at: datetime | None = None
    source: str = ""
    controls: tuple[str, ...] = ()
    approved_by: str = ""  # "auto" or "human"
    applied_at: datetime | None = None
    reasons: dict[str, str] = field(default_factory=dict)  # event → reason
    replaced_by: str = ""
    grants: list[dict[str, Any]] = field(default_factory=list)
    verifications: list[dict[str, Any]] = field(default_factory=list)
    joined: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # at, source, kind, severity
    replaces: str = ""  # a re-ask after drift: the stale remediation it asks again for (same finding)
    events: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Filters:
    playbooks: tuple[str, ...] = ()  # globs
    controls: tuple[str, ...] = ()  # prefixes: "MCSB" or "MCSB NS-2"
    resource_types: tuple[str, ...] = ()  # ARM types, case-insensitive

    def describe(self) -> str:
        parts = [f"playbook {', '.join(self.playbooks)}" if self.playbooks else "",
                 f"control {', '.join(self.controls)}" if self.controls else "",
                 f"resource type {', '.join(self.resource_types)}" if self.resource_types else ""]
        return "; ".join(p for p in parts if p) or "none"

    def keep(self, playbook: str, controls: Sequence[str], resource_type: str) -> bool:
        if self.playbooks and not any(fnmatch.fnmatchcase(playbook, g) for g in self.playbooks):
            return False
        if self.controls and not any(c == want or c.startswith((want + " ", want + "."))
                                     for c in controls for want in self.controls):
            return False
        return not (self.resource_types and resource_type.lower() not in {t.lower() for t in self.resource_types})


def check_filters(filters: Filters, playbooks: Mapping[str, Sequence[str]]) -> None:
    """``UsageError`` for a ``--playbook`` glob or ``--control`` that matches none of ``playbooks``
    (name → controls), with the closest names (difflib): a typo must not read as "no findings"."""
    problems = []
    names = sorted(playbooks)
    for glob in filters.playbooks:
        if not any(fnmatch.fnmatchcase(name, glob) for name in names):
            problems.append(f"--playbook {glob!r} matches no playbook{_did_you_mean(glob, names)}")
    known = sorted({c for controls in playbooks.values() for c in controls})
    frameworks = sorted({c.partition(" ")[0] for c in known})
    for want in filters.controls:
        if not any(c == want or c.startswith((want + " ", want + ".")) for c in known):
            problems.append(f"--control {want!r}: no playbook serves this control"
                            f"{_did_you_mean(want, [*frameworks, *known])}")
    if problems:
        raise UsageError("; ".join(problems))


def _did_you_mean(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f" (known: {', '.join(choices[:12])}{', …' if len(choices) > 12 else ''})" if choices else ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    period: Period
    generated_at: datetime
    store: str
    filters: Filters
    sections: dict[str, list[dict[str, Any]]]
    integrity: VerifyResult
    policy_note: str  # why the policy snapshot is absent, or where it came from

    @property
    def empty(self) -> bool:
        return not self.sections["changes"] and not self.sections["findings"]

    def totals(self) -> dict[str, int]:
        outcomes = Counter[str]()
        for row in self.sections["changes"]:
            outcomes[row["outcome"]] += 1
        return {"findings": sum(int(r["count"]) for r in self.sections["findings"]),
                "remediations": len(self.sections["changes"]),
                **{o: outcomes[o] for o in OUTCOMES},
                "overdue": sum(1 for r in self.sections["changes"] if r["overdue"]),
                "incomplete_trails": len(self.integrity.incomplete),
                "integrity_problems": len(self.integrity.problems) + self.integrity.more_problems}


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return codec.dt_from_str(str(value))
    except ValueError:
        return None


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""


def _fold(records: Iterable[ChainRecord], rems: dict[str, _Rem], system: list[dict[str, Any]]) -> Iterator[ChainRecord]:
    """Pass the records through (to ``verify``), folding each into ``rems``/``system`` on the way."""
    for rec in records:
        yield rec
        if (not rec.hash and not rec.legacy) or rec.chain == ANCHOR_CHAIN:
            continue
        try:
            data = codec.loads(rec.doc)
        except ValueError:
            continue  # an unreadable record: verify reports it as edited
        if not isinstance(data, dict):
            continue
        rid = data.get("remediation_id")
        event, detail, at = str(data.get("event", "")), data.get("detail") or {}, _dt(data.get("at"))
        if not isinstance(detail, dict) or at is None:
            continue
        if not rid:
            if event in ("plan_error", "plan_failed"):
                raw = detail.get("finding")
                finding: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
                system.append({"at": at, "source": str(data.get("actor", "")), "kind": str(finding.get("kind") or ""),
                               "event": event, "reason": str(detail.get("reason", ""))})
            continue
        r = rems.setdefault(str(rid), _Rem())
        r.events += 1
        _fold_one(r, event, str(data.get("actor", "")), detail, at)


def _fold_one(r: _Rem, event: str, actor: str, detail: Mapping[str, Any], at: datetime) -> None:
    if event in OPENING_EVENTS and r.opened_at is None:
        r.opened_at = at
        r.received_at = _dt(detail.get("received_at")) or at
        r.source = actor
        r.controls = tuple(str(c) for c in detail.get("controls") or ())
        r.replaces = str(detail.get("replaces") or "")
    elif event == "approved":
        r.approved_by = "auto" if actor == "auto" else "human"
    elif event == "applied":
        r.applied_at = at
    elif event == "replaced":
        r.replaced_by = str(detail.get("replaced_by", ""))
    elif event == "elevated":
        r.grants.append({**detail, "granted_at": _iso(at), "released": "", "released_at": ""})
    elif event == "released":
        scope = detail.get("scope")
        grant = next((g for g in reversed(r.grants) if not g["released"] and g.get("scope") == scope), None)
        if grant is not None:
            grant["released"] = str(detail.get("status", ""))
            grant["released_at"] = _iso(at)
            grant["release_request_id"] = detail.get("request_id")
    elif event == "change_verified":
        r.verifications.append({"at": at, "resource_id": str(detail.get("resource_id", "")), "result": "verified",
                                "detail": ""})
    elif event == "finding_joined":
        r.joined.append((at, actor, str(detail.get("kind") or ""), str(detail.get("severity") or "Unknown")))
    if event in ("rejected", "failed", "stale", "exempt", "withdrawn", "expired", "no_change", "approval_requested"):
        r.reasons[event] = str(detail.get("reason", "") or "")
        if event == "failed" and "verify failed" in r.reasons[event]:
            r.verifications.append({"at": at, "resource_id": "", "result": "failed", "detail": r.reasons[event]})


def _outcome(rem: Remediation, r: _Rem) -> str:
    state = str(rem.state)
    if state == "applied":
        return "auto_applied" if r.approved_by == "auto" else "approved_applied"
    if state == "stale":
        return "stale_reasked" if r.replaced_by else "stale"
    if state in OPEN_STATES:
        return "open"
    return state  # rejected, exempt, failed, withdrawn, expired, no_change, rolled_back (and any newer state)


def _severity(rem: Remediation) -> str:
    value = str((rem.finding or {}).get("severity") or "Unknown").capitalize()
    return value if value in SEVERITIES else "Unknown"


def _percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return str(round(value))


def period_totals(store: Any, playbooks: Iterable[Any]) -> EvidenceTotals:
    """The evidence port of an engine (``Engine(evidence=…)``, for ``/remediate report``): the
    totals of ``build_report`` over ``store`` for a period, with the controls of ``playbooks``."""

    def totals(period: Period, *, now: datetime) -> dict[str, int]:
        controls = {p.name: p.controls for p in playbooks}
        return build_report(store, period, now=now, playbook_controls=controls).totals()

    return totals


def build_report(  # noqa: PLR0915 - one pass that fills every section; split, it would pass the state around
store: Any, period: Period, *, now: datetime, playbook_controls: Mapping[str, Sequence[str]],
                 filters: Filters = Filters(), exemptions: Iterable[Any] = (), graph: Graph | None = None,
                 subscriptions: Sequence[str] = (), store_name: str = "") -> Report:
    """The report for ``period`` (see the module docstring). ``playbook_controls``: the current
    playbooks' controls, for remediations opened before controls were audited; ``exemptions``: the
    entries of an exemptions file (``remediator.playbooks.Exemption``) for the expiring list."""
    from remediator.evidence.verify import remediation_states  # noqa: PLC0415 - one helper, shared
    from remediator.store.sqlite import SQLiteStore  # noqa: PLC0415

    rems: dict[str, _Rem] = {}
    system: list[dict[str, Any]] = []
    stored = list(remediation_states(store))  # ids and states only: the remediations counted
    integrity = verify(_fold(store.audit_records(), rems, system), remediations=stored,
                       global_sequence=isinstance(store, SQLiteStore), start=period.start, end=period.end)
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "findings", "changes", "outcomes_by_playbook", "by_control", "time_to_remediate", "approvals",
        "pim_requests", "verifications", "exemptions", "exemptions_expiring", "open_overdue", "timeline",
        "policy_compliance", "integrity", "incomplete_trails")}
    findings: Counter[tuple[str, str, str]] = Counter()
    daily_found: Counter[str] = Counter()
    daily_fixed: Counter[str] = Counter()
    ttr: dict[str, list[float]] = defaultdict(list)

    def in_period(at: datetime | None) -> bool:
        return at is not None and period.start <= at < period.end

    for rid, _ in stored:
        rem = store.get(rid)
        if rem is None:
            continue
        r = rems.setdefault(rid, _Rem())
        r.opened_at = r.opened_at or rem.created_at  # (its opening record missing: counted all the same)
        if r.opened_at >= period.end:
            continue
        opened_in = in_period(r.opened_at)
        if not opened_in and rem.state not in OPEN_STATES:
            continue
        controls = r.controls or tuple(playbook_controls.get(rem.playbook, ()))
        resource_type = str((rem.finding or {}).get("resource_type") or "")
        if not filters.keep(rem.playbook, controls, resource_type):
            continue
        severity = _severity(rem)
        kind = str((rem.finding or {}).get("kind") or "")
        root = r
        for _ in range(10):  # a re-ask (or an undo) is the same finding: count it once, time it from its arrival
            earlier = rems.get(root.replaces) if root.replaces else None
            if earlier is None:
                break
            root = earlier
        r.received_at, r.source = root.received_at, root.source
        if opened_in and not r.replaces and not rem.undo_of:
            findings[(r.source, kind, severity)] += 1
            daily_found[r.opened_at.date().isoformat()] += 1
        for at, source, jkind, jsev in r.joined:
            if in_period(at):
                findings[(source, jkind or kind, jsev.capitalize() if jsev else "Unknown")] += 1
                daily_found[at.date().isoformat()] += 1
        outcome = _outcome(rem, r)
        fixed_at = r.applied_at if outcome in ("auto_applied", "approved_applied", "rolled_back") else None
        duration = (fixed_at - (r.received_at or rem.created_at)).total_seconds() if fixed_at else None
        if fixed_at is not None and duration is not None:
            ttr[severity].append(duration)
            if in_period(fixed_at):
                daily_fixed[fixed_at.date().isoformat()] += 1
        votes = [v for v in rem.votes if v.decision == "approve"]
        rejected = [v for v in rem.votes if v.decision == "reject"]
        approvers = sorted({v.user_id for v in votes})
        quorum_held: str
        expiry_held: str
        if r.approved_by == "auto":
            quorum_held = expiry_held = "auto"
        elif not votes:
            quorum_held = expiry_held = ""
        else:
            quorum_held = "yes" if len(approvers) >= rem.quorum and rem.requester not in approvers else "no"
            expiry_held = "yes" if rem.expires_at is None or all(v.at <= rem.expires_at for v in votes) else "no"
        age = now - (r.received_at or rem.created_at)
        overdue = outcome == "open" and (
            (rem.state == "pending_approval" and rem.expires_at is not None and now >= rem.expires_at)
            or age > SLA.get(severity, SLA_DEFAULT))
        reason = (r.reasons.get("rejected") or (rejected[0].reason if rejected else "")) if outcome == "rejected" \
            else r.reasons.get({"failed": "failed", "exempt": "exempt", "stale": "stale", "stale_reasked": "stale",
                                "withdrawn": "withdrawn", "expired": "expired", "no_change": "no_change"}.get(
                                    outcome, ""), rem.error or "")
        if outcome == "failed" and not reason:
            reason = rem.error or ""
        title = str((rem.finding or {}).get("title") or "")
        sections["changes"].append({
            "remediation_id": rem.id, "playbook": rem.playbook, "controls": "; ".join(controls),
            "resource_id": rem.resource_id, "resource_type": resource_type, "finding_id": rem.finding_id,
            "finding": title, "severity": severity, "source": r.source, "risk": rem.risk,
            "received_at": _iso(r.received_at), "state": rem.state, "outcome": outcome, "reason": reason,
            "applied_at": _iso(fixed_at), "time_to_remediate_s": _seconds(duration),
            "approved_by": "auto" if r.approved_by == "auto" else "; ".join(approvers),
            "approvals": len(approvers), "quorum": rem.quorum if r.approved_by != "auto" else 0,
            "quorum_held": quorum_held, "expires_at": _iso(rem.expires_at), "expiry_held": expiry_held,
            "replaced_by": r.replaced_by, "overdue": overdue, "changes": len(rem.changes),
            "pim_requests": len(r.grants)})
        for v in rem.votes:
            sections["approvals"].append({
                "remediation_id": rem.id, "playbook": rem.playbook, "user_id": v.user_id, "decision": v.decision,
                "at": _iso(v.at), "reason": v.reason,
                "within_expiry": "yes" if rem.expires_at is None or v.at <= rem.expires_at else "no"})
        for g in r.grants:
            sections["pim_requests"].append({
                "remediation_id": rem.id, "request_id": str(g.get("request_id") or ""),
                "strategy": str(g.get("strategy") or ""), "role": str(g.get("role") or ""),
                "scope": str(g.get("scope") or ""), "duration": str(g.get("duration") or ""),
                "status": str(g.get("status") or ""), "granted_at": g["granted_at"],
                "expires_at": str(g.get("expires_at") or ""), "released": g["released"] or "not released",
                "released_at": g["released_at"]})
        for v in r.verifications:
            sections["verifications"].append({"remediation_id": rem.id,
                                              "resource_id": v["resource_id"] or rem.resource_id,
                                              "result": v["result"], "at": _iso(v["at"]), "detail": v["detail"]})
        if outcome == "exempt":
            owner, expires, why = _exemption(r.reasons.get("exempt", ""))
            row = {"remediation_id": rem.id, "playbook": rem.playbook, "resource_id": rem.resource_id,
                   "owner": owner, "reason": why, "expires": expires, "source": "file" if owner else "tag"}
            sections["exemptions"].append(row)
            if expires and now.date().isoformat() <= expires <= (now + EXPIRING_WITHIN).date().isoformat():
                sections["exemptions_expiring"].append(row)
        if overdue:
            sections["open_overdue"].append({"remediation_id": rem.id, "playbook": rem.playbook,
                                             "resource_id": rem.resource_id, "severity": severity, "state": rem.state,
                                             "received_at": _iso(r.received_at), "age_days": round(age.days)})
    for item in system:
        if in_period(item["at"]) and item["event"] == "plan_error" and filters.describe() == "none":
            findings[(item["source"], item["kind"], "Unknown")] += 1
    seen_expiring = {(e["resource_id"], e["playbook"]) for e in sections["exemptions_expiring"]}
    for e in exemptions:
        expires = e.expires.isoformat()
        if now.date().isoformat() <= expires <= (now + EXPIRING_WITHIN).date().isoformat() \
                and (e.resource, e.playbook) not in seen_expiring:
            sections["exemptions_expiring"].append({"remediation_id": "", "playbook": e.playbook,
                                                    "resource_id": e.resource, "owner": e.owner, "reason": e.reason,
                                                    "expires": expires, "source": f"{e.file}:{e.line}"})
    sections["findings"] = [{"source": s, "kind": k, "severity": sev, "count": n}
                            for (s, k, sev), n in sorted(findings.items(), key=lambda x: (x[0][0], x[0][1],
                                                                                         SEVERITIES.index(x[0][2])))]
    for sev in SEVERITIES:
        values = ttr.get(sev)
        if values:
            sections["time_to_remediate"].append({
                "severity": sev, "count": len(values), "median_s": round(statistics.median(values)),
                "p90_s": round(_percentile(values, 0.9)), "max_s": round(max(values))})
    by_playbook: dict[str, Counter[str]] = defaultdict(Counter)
    by_control: dict[str, Counter[str]] = defaultdict(Counter)
    control_playbooks: dict[str, set[str]] = defaultdict(set)
    for row in sections["changes"]:
        by_playbook[row["playbook"]][row["outcome"]] += 1
        for c in row["controls"].split("; ") if row["controls"] else ["(none)"]:
            by_control[c][row["outcome"]] += 1
            control_playbooks[c].add(row["playbook"])
    for name in sorted(by_playbook):
        counts = by_playbook[name]
        sections["outcomes_by_playbook"].append({"playbook": name,
                                                 "controls": "; ".join(playbook_controls.get(name, ())),
                                                 "total": sum(counts.values()), **{o: counts[o] for o in OUTCOMES}})
    for name in sorted(by_control):
        counts = by_control[name]
        sections["by_control"].append({"control": name, "playbooks": "; ".join(sorted(control_playbooks[name])),
                                       "total": sum(counts.values()), **{o: counts[o] for o in OUTCOMES}})
    day = period.start
    while day < period.end and len(sections["timeline"]) < 1100:
        key = day.date().isoformat()
        sections["timeline"].append({"day": key, "findings": daily_found[key], "fixes": daily_fixed[key]})
        day += timedelta(days=1)
    sections["integrity"] = [{"check": "audit verify", "result": "ok" if integrity.ok else "FAILED",
                              "detail": integrity.summary()}] + [
        {"check": p.kind, "result": p.record, "detail": p.detail} for p in integrity.problems]
    details: dict[str, list[str]] = defaultdict(list)
    for p in integrity.problems:
        if p.chain in integrity.incomplete:
            details[p.chain].append(p.line())
    states = dict(stored)
    sections["incomplete_trails"] = [{"remediation_id": rid, "state": states.get(rid, ""),
                                      "problems": "; ".join(details[rid]) or "see audit verify"}
                                     for rid in integrity.incomplete]
    note = _policy_snapshot(graph, subscriptions, sections["policy_compliance"])
    return Report(period=period, generated_at=now, store=store_name, filters=filters, sections=sections,
                  integrity=integrity, policy_note=note)


def _exemption(reason: str) -> tuple[str, str, str]:
    """(owner, expires, reason) from the planner's exempt reason (``exempted until D by O: R``)."""
    m = _EXEMPT.match(reason)
    if m:
        return m.group(2), m.group(1), m.group(3)
    if reason.startswith(_TAG_EXEMPT):
        return "", "", reason[len(_TAG_EXEMPT):]
    return "", "", reason


POLICY_QUERY = (
    "policyresources | where type =~ 'microsoft.policyinsights/policystates' "
    "| extend assignment = tostring(properties.policyAssignmentId), "
    "state = tostring(properties.complianceState) "
    "| summarize compliant = countif(state =~ 'Compliant'), non_compliant = countif(state =~ 'NonCompliant'), "
    "total = count() by assignment | order by non_compliant desc"
)


def _policy_snapshot(graph: Graph | None, subscriptions: Sequence[str], rows: list[dict[str, Any]]) -> str:
    """Azure Policy compliance per assignment from Resource Graph now, into ``rows``; the note to print."""
    if graph is None:
        return "not included: no Resource Graph client is configured (remediator report --policy-snapshot)"
    try:
        from azure.mgmt.resourcegraph.models import QueryRequest  # noqa: PLC0415
    except ImportError:
        return "not included: azure-mgmt-resourcegraph is not installed"
    try:
        result = graph.resources(QueryRequest(subscriptions=list(subscriptions) or None, query=POLICY_QUERY))
    except Exception as e:  # an unreachable graph is stated in the report, never fatal
        return f"not included: Resource Graph did not answer ({type(e).__name__}: {' '.join(str(e).split())[:200]})"
    data = getattr(result, "data", None) or []
    for item in data:
        if isinstance(item, Mapping):
            rows.append({"assignment": str(item.get("assignment", "")), "compliant": int(item.get("compliant") or 0),
                         "non_compliant": int(item.get("non_compliant") or 0), "total": int(item.get("total") or 0)})
    return f"Resource Graph, {len(rows)} assignments, at report time"
