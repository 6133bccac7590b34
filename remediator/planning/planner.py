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
from remediator.actions.private_link_table import PrivateLinkSettings
from remediator.azure.state import SavedState, StateReader
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


def _group_id(finding: Finding) -> str | None:
    parsed = ids.parse(finding.resource_id)
    if not (parsed.subscription_id and parsed.resource_group):
        return None
    return f"/subscriptions/{parsed.subscription_id}/resourceGroups/{parsed.resource_group}"


@dataclass(kw_only=True)
class Planner:
    """Plans records against a playbook set and a state reader."""

    playbooks: PlaybookSet
    state: StateReader
    exemptions: Exemptions | None = None
    protected_principals: frozenset[str] = field(default_factory=frozenset)
    today: date = field(default_factory=date.today)
    now: datetime | None = None  # the clock actions may use (PlanContext.now); None: the finding's time
    settings: Mapping[str, Any] = field(default_factory=dict)  # the deployment settings actions read
    private_link: PrivateLinkSettings | None = None  # the deployment's private-endpoint subnets and DNS zones
    _groups: dict[str, dict[str, Any] | None] = field(default_factory=dict, init=False, repr=False)

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
            group = self._group(finding) if self.playbooks.needs_group_tags else None
            unknown = self._undecidable(finding, doc, group)
            if unknown is not None:
                return Result(finding=summary, playbook=unknown[0], outcome="error", reason=unknown[1],
                              title=finding.title)
            playbook = self.playbooks.match(finding, tags, group_tags=resource_tags(group))
        except (InputError, ActionError) as e:
            return Result(finding=summary, playbook=None, outcome="error", reason=str(e), title=finding.title,
                          extra=_transient(e))
        if playbook is None:
            return Result(finding=summary, playbook=None, outcome="no_match", reason=unclaimed(finding),
                          title=finding.title)

        warnings: list[str] = []
        advice: list[str] = []

        def result(outcome: Outcome, reason: str, changes: tuple[Change, ...] = ()) -> Result:
            return Result(finding=summary, playbook=playbook.name, outcome=outcome, reason=reason,
                          changes=changes, risk=playbook.risk, title=finding.title, warnings=tuple(warnings),
                          advice=tuple(advice))

        exempt = self._exemption(finding, playbook, tags)
        if exempt is not None:
            return result("exempt", exempt)
        try:
            changes = self._changes(finding, playbook, warnings, advice)
        except (ActionError, InputError) as e:
            missing = doc is None and bool(finding.resource_type) and isinstance(self.state, SavedState)
            reason = f"{e}; {self._supply(finding.resource_id)}" if missing else str(e)
            return replace(result("error", reason), extra=_transient(e))
        if not changes:
            if advice:
                return result("no_changes", f"no configuration answer: nothing is changed; {playbook.name} sends the "
                                            "evidence and the recommended steps to the channel")
            if warnings:
                n = len(warnings)
                return result("no_changes", f"{playbook.name} would change nothing in what it could check; "
                                            f"{n} thing{'s' if n != 1 else ''} not checked (see warnings)")
            return result("no_changes", f"already compliant: {playbook.name} would change nothing")
        n = len(changes)
        return result("changes", f"{n} change{'s' if n != 1 else ''} planned by {playbook.name}", tuple(changes))

    def _group(self, finding: Finding) -> dict[str, Any] | None:
        """The finding's resource group document (for ``resource_group.tags`` conditions), read once per run."""
        rg_id = _group_id(finding)
        if rg_id is None:
            return None
        key = ids.key(rg_id)
        if key not in self._groups:
            self._groups[key] = self.state.get(rg_id)
        return self._groups[key]

    def _undecidable(self, finding: Finding, doc: Mapping[str, Any] | None, group: Mapping[str, Any] | None
                     ) -> tuple[str, str] | None:
        """(playbook, reason) when which playbook claims ``finding`` depends on tags the state does not
        hold: the highest-ranked candidate whose conditions cannot be evaluated comes before any
        candidate that claims the finding on what the state holds."""
        resource_missing = doc is None and bool(finding.resource_type)
        rg_id = _group_id(finding)
        group_missing = group is None and rg_id is not None and self.playbooks.needs_group_tags
        if not (resource_missing or group_missing):
            return None
        for p in self.playbooks.candidates(finding):
            if resource_missing and p.needs_tags:
                missing = finding.resource_id
            elif group_missing and p.needs_group_tags and rg_id is not None:
                missing = rg_id
            elif self.playbooks.match_one(p, finding, resource_tags(doc), group_tags=resource_tags(group)):
                return None  # this one claims it on what the state holds, and outranks the rest
            else:
                continue
            rank = f"priority {p.priority}" if p.priority is not None else "no priority"
            return p.name, (f"cannot tell which playbook applies: {p.name} ({p.file}:{p.line}, {rank}) matches on "
                            f"tags of {missing}, which the state does not hold; {self._supply(missing)}")
        return None

    def _supply(self, resource_id: str) -> str:
        if isinstance(self.state, SavedState):
            parsed = ids.parse(resource_id)
            save = (f"az group show --name {parsed.resource_group} --subscription {parsed.subscription_id} > group.json"
                    if not parsed.namespace else f"az resource show --ids {resource_id} > resource.json")
            return f"add its ARM document to the --resources file or folder ({save})"
        return "it was not found (deleted, or not readable by this identity)"

    def _exemption(self, finding: Finding, playbook: Playbook, tags: Mapping[str, str]) -> str | None:
        tag_reason = exemption_from_tags(tags)
        if tag_reason is not None:
            return f"resource tag remediation-exempt: {tag_reason}"
        if self.exemptions is not None:
            hit = self.exemptions.find(finding.resource_id, playbook.name, today=self.today)
            if hit is not None:
                return f"exempted until {hit.expires.isoformat()} by {hit.owner}: {hit.reason}"
        return None

    def _changes(self, finding: Finding, playbook: Playbook, warnings: list[str],
                 advice: list[str] | None = None) -> list[Change]:
        """The steps' changes; each step's warnings are appended to ``warnings`` (also when a later
        step fails), prefixed with the step's action when the playbook has several steps."""
        changes: list[Change] = []
        for step in playbook.steps:
            action = REGISTRY.get(step.action)
            if action is None:  # the loader refuses unknown actions; kept fail-closed
                raise ActionError(f"{playbook.file}: unknown action {step.action!r}", action=step.action)
            ctx = PlanContext(finding=finding, state=self.state, protected_principals=self.protected_principals,
                              now=self.now, settings=self.settings, private_link=self.private_link)
            try:
                changes.extend(action.plan(ctx, step.params))
            finally:
                prefix = f"{step.action}: " if len(playbook.steps) > 1 else ""
                warnings.extend(prefix + w for w in ctx.warnings if prefix + w not in warnings)
                if advice is not None:
                    advice.extend(ctx.advice)
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
