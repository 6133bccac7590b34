"""Findings → matched playbook → exemption check → action plans → one ``Result`` per record.

This is the dry run: it reads state through a ``StateReader`` (saved files or live, read-only)
and calls only the actions' pure ``plan()``. It never writes; there is no flag that would make
it write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from remediator import ids
from remediator.actions import REGISTRY, PlanContext
from remediator.actions.change import Change
from remediator.azure.state import StateReader
from remediator.errors import ActionError, InputError
from remediator.findings.model import Finding, Ignored, Record
from remediator.planning.result import Outcome, Result
from remediator.playbooks import Exemptions, Playbook, PlaybookSet, exemption_from_tags
from remediator.playbooks.match import unclaimed


def resource_tags(doc: Mapping[str, Any] | None) -> dict[str, str]:
    """The resource's tags as str → str (ARM returns ``null`` or omits them when there are none)."""
    tags = (doc or {}).get("tags")
    if not isinstance(tags, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in tags.items()}


def fold(records: Iterable[Record]) -> tuple[list[Record], int]:
    """The records without repeats, in order, and how many repeats were dropped.

    As ingest deduplicates: a finding whose id was seen already is the same finding delivered
    again (the first one is kept); an ignored record is folded only into an identical one.
    """
    seen: set[object] = set()
    unique: list[Record] = []
    total = 0
    for total, record in enumerate(records, 1):  # noqa: B007  (total is the count after the loop)
        k: object = ("finding", record.id) if isinstance(record, Finding) else record
        if k not in seen:
            seen.add(k)
            unique.append(record)
    return unique, total - len(unique)


@dataclass(kw_only=True)
class Planner:
    """Plans records against a playbook set and a state reader."""

    playbooks: PlaybookSet
    state: StateReader
    exemptions: Exemptions | None = None
    protected_principals: frozenset[str] = field(default_factory=frozenset)
    today: date = field(default_factory=date.today)
    now: datetime | None = None  # the clock actions may use (PlanContext.now); None: the finding's time

    def plan(self, records: Iterable[Record]) -> list[Result]:
        return [self.plan_one(r) for r in records]

    def plan_one(self, record: Record) -> Result:
        if isinstance(record, Ignored):
            return Result(finding=record.summary(), playbook=None, outcome="ignored", reason=record.reason)
        return self._plan_finding(record)

    def _plan_finding(self, finding: Finding) -> Result:
        summary = finding.summary()
        try:
            doc = self.state.get(finding.resource_id) if finding.resource_type else None
            tags = resource_tags(doc)
            playbook = self.playbooks.match(finding, tags)
        except (InputError, ActionError) as e:
            return Result(finding=summary, playbook=None, outcome="error", reason=str(e), title=finding.title,
                          extra=_transient(e))
        if playbook is None:
            return Result(finding=summary, playbook=None, outcome="no_match", reason=unclaimed(finding),
                          title=finding.title)

        warnings: list[str] = []

        def result(outcome: Outcome, reason: str, changes: tuple[Change, ...] = ()) -> Result:
            return Result(finding=summary, playbook=playbook.name, outcome=outcome, reason=reason,
                          changes=changes, risk=playbook.risk, title=finding.title, warnings=tuple(warnings))

        exempt = self._exemption(finding, playbook, tags)
        if exempt is not None:
            return result("exempt", exempt)
        try:
            changes = self._changes(finding, playbook, warnings)
        except (ActionError, InputError) as e:
            return replace(result("error", str(e)), extra=_transient(e))
        if not changes:
            if warnings:
                n = len(warnings)
                return result("no_changes", f"{playbook.name} would change nothing in what it could check; "
                                            f"{n} thing{'s' if n != 1 else ''} not checked (see warnings)")
            return result("no_changes", f"already compliant: {playbook.name} would change nothing")
        n = len(changes)
        return result("changes", f"{n} change{'s' if n != 1 else ''} planned by {playbook.name}", tuple(changes))

    def _exemption(self, finding: Finding, playbook: Playbook, tags: Mapping[str, str]) -> str | None:
        tag_reason = exemption_from_tags(tags)
        if tag_reason is not None:
            return f"resource tag remediation-exempt: {tag_reason}"
        if self.exemptions is not None:
            hit = self.exemptions.find(finding.resource_id, playbook.name, today=self.today)
            if hit is not None:
                return f"exempted until {hit.expires.isoformat()} by {hit.owner}: {hit.reason}"
        return None

    def _changes(self, finding: Finding, playbook: Playbook, warnings: list[str]) -> list[Change]:
        """The steps' changes; each step's warnings are appended to ``warnings`` (also when a later
        step fails), prefixed with the step's action when the playbook has several steps."""
        changes: list[Change] = []
        for step in playbook.steps:
            action = REGISTRY.get(step.action)
            if action is None:  # the loader refuses unknown actions; kept fail-closed
                raise ActionError(f"{playbook.file}: unknown action {step.action!r}", action=step.action)
            ctx = PlanContext(finding=finding, state=self.state, protected_principals=self.protected_principals,
                              now=self.now)
            try:
                changes.extend(action.plan(ctx, step.params))
            finally:
                prefix = f"{step.action}: " if len(playbook.steps) > 1 else ""
                warnings.extend(prefix + w for w in ctx.warnings if prefix + w not in warnings)
        # A step repeated in a playbook plans the same change twice: keep one. Two changes of one
        # action on one resource that write different bodies (the two regenerateCredential calls of
        # acr.rotate-credentials, password2 then password) are both kept.
        seen: dict[tuple[str, str, str], list[Any]] = {}
        unique: list[Change] = []
        for c in changes:
            written = seen.setdefault((c.action, ids.key(c.resource_id), c.operation), [])
            if c.after not in written:  # compared only when one action plans one resource twice
                written.append(c.after)
                unique.append(c)
        return unique


def _transient(exc: BaseException) -> dict[str, Any]:
    """``Result.extra`` of an error result: ``{"transient": True}`` when ARM said "later" (a 5xx, a
    429, a timeout: ``remediator.azure.errors.is_transient``): the worker retries those."""
    from remediator.azure.errors import is_transient  # noqa: PLC0415 (azure.core only when an error happened)

    return {"transient": True} if is_transient(exc) else {}
