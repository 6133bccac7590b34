"""Does a playbook claim a finding? Plus the glob and overlap logic the loader reuses.

Globs know ``*`` (any run of characters, ``/`` included) and ``?`` (one character); everything
else is literal (no ``[...]`` classes: ARM names and alert types never need them). Every
comparison is case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from remediator import ids
from remediator.errors import Issue, PlaybookError
from remediator.findings.model import Finding, Severity
from remediator.playbooks.model import SUBSCRIPTION, MatchSpec, Playbook, TagCondition


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


RESOURCE_GROUP = "microsoft.resources/resourcegroups"  # a resource-group-scoped finding's type


def is_glob(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def glob_match(pattern: str, text: str) -> bool:
    """Case-insensitive glob match of the whole ``text``."""
    if not is_glob(pattern):
        return pattern.lower() == text.lower()
    return _glob_regex(pattern).fullmatch(text) is not None


def globs_overlap(a: str, b: str) -> bool:
    """True when some string matches both globs (``RDP_*`` and ``RDP_Incoming_BF_OneToOne``, ``*_BF_*``
    and ``RDP_*``). Walks both patterns together; states are (position in a, position in b)."""
    a, b = a.lower(), b.lower()
    seen: set[tuple[int, int]] = set()
    todo = [(0, 0)]
    while todo:
        i, j = todo.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        ca = a[i] if i < len(a) else None
        cb = b[j] if j < len(b) else None
        if ca == "*":
            todo.append((i + 1, j))  # the star matches nothing more
            if cb is not None and cb != "*":
                todo.append((i, j + 1))  # the star swallows b's next character
        if cb == "*":
            todo.append((i, j + 1))
            if ca is not None and ca != "*":
                todo.append((i + 1, j))
        if ca is not None and cb is not None and ca != "*" and cb != "*" and (ca == cb or "?" in (ca, cb)):
            todo.append((i + 1, j + 1))
    return False


def finding_type(finding: Finding) -> str:
    """The finding's resource type in ``MatchSpec.resource_types`` form (``subscription`` for a
    subscription scope, whatever spelling the parser used)."""
    t = ids.type_key(finding.resource_type)
    if t in ("", "microsoft.resources/subscriptions", SUBSCRIPTION):
        parsed = ids.parse(finding.resource_id)
        if parsed.subscription_id and not parsed.namespace:
            return SUBSCRIPTION if not parsed.resource_group else RESOURCE_GROUP
    return t


def policy_key(ref: str) -> str:
    """Comparison form of a policy reference: a full definition id → ``ids.key``; a GUID → lower."""
    return ids.key(ref) if "/" in ref else ref.strip().lower()


def _policy_name(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1].lower()


def _claims(spec: MatchSpec, finding: Finding) -> bool:
    kind, ftype = finding.kind, finding.type.strip().lower()
    if kind == "recommendation":
        return ftype in spec.recommendations
    if kind == "alert":
        return any(glob_match(p, ftype) for p in spec.alerts)
    if kind == "operation":
        return ftype in spec.operations
    # policy: a full definition id in the playbook compares with the finding's full id when it
    # has one; otherwise definition names (GUIDs for built-ins) compare
    full = ids.key(finding.policy_definition_id) if finding.policy_definition_id else None
    names = {ftype, _policy_name(full)} if full else {ftype}
    for ref in spec.policies:
        if ref.startswith("/"):
            if (full is not None and ref == full) or (full is None and _policy_name(ref) in names):
                return True
        elif ref in names:
            return True
    return False


def tag_condition_holds(cond: TagCondition, tags: Mapping[str, str]) -> bool:
    """``tags`` must already have lower-cased keys."""
    value = tags.get(cond.tag)
    if cond.op == "exists":
        return value is not None
    if cond.op == "absent":
        return value is None
    if cond.op == "in":
        return value is not None and value.casefold() in cond.values
    return value is None or value.casefold() not in cond.values


def mismatch(spec: MatchSpec, finding: Finding, tags: Mapping[str, str] | None = None, *,
             check_tags: bool = True, group_tags: Mapping[str, str] | None = None) -> str | None:
    """``None`` when ``spec`` claims ``finding``; otherwise the first criterion that fails, in words.

    ``tags`` are the resource's tags and ``group_tags`` its resource group's (keys
    case-insensitive); ``None`` means no tags. With ``check_tags=False`` the tag conditions are
    skipped: "could claim it, whatever the tags".
    """
    if not _claims(spec, finding):
        return f"{finding.kind} {finding.type} is not listed"
    rtype = finding_type(finding)
    if rtype not in spec.resource_types:
        return f"resource type {rtype or '(none)'} is not one of {', '.join(spec.resource_types)}"
    if spec.severity_at_least is not None:
        if finding.severity == Severity.UNKNOWN:
            return "the finding has no severity, the playbook needs severity_at_least"
        if finding.severity < spec.severity_at_least:
            return f"severity {finding.severity.label} is below {spec.severity_at_least.label}"
    if spec.subscriptions and (finding.subscription_id or "").lower() not in spec.subscriptions:
        return f"subscription {finding.subscription_id or '(none)'} is not in scope"
    if spec.resource_groups and not any(glob_match(p, finding.resource_group or "") for p in spec.resource_groups):
        return f"resource group {finding.resource_group or '(none)'} is not in scope"
    if spec.where and check_tags:
        lowered = {str(k).lower(): str(v) for k, v in (tags or {}).items()}
        group = {str(k).lower(): str(v) for k, v in (group_tags or {}).items()}
        for cond in spec.where:
            if not tag_condition_holds(cond, group if cond.scope == "resource_group" else lowered):
                whose = "resource group tag" if cond.scope == "resource_group" else "tag"
                return f"{whose} condition on {cond.tag!r} does not hold"
    return None


def unclaimed(finding: Finding) -> str:
    """The reason given for a finding that no playbook claims."""
    on = f" on {finding.resource_type}" if finding.resource_type else ""
    return f"no playbook claims {finding.kind} {finding.type}{on}"


def matches(spec: MatchSpec, finding: Finding, tags: Mapping[str, str] | None = None) -> bool:
    return mismatch(spec, finding, tags) is None


# --------------------------------------------------------------------------------------------
# Static overlap, for the loader: could one finding be claimed by both specs?


def shared_identifiers(a: MatchSpec, b: MatchSpec) -> list[tuple[str, int, int]]:
    """What both specs claim, as ``(kind, index in a, index in b)`` with kind one of
    ``recommendations``, ``alerts`` (glob-aware), ``policies``, ``operations``."""
    shared = [
        ("recommendations", i, j)
        for i, x in enumerate(a.recommendations)
        for j, y in enumerate(b.recommendations)
        if x == y
    ]
    shared += [("alerts", i, j) for i, x in enumerate(a.alerts) for j, y in enumerate(b.alerts) if globs_overlap(x, y)]
    shared += [("operations", i, j) for i, x in enumerate(a.operations) for j, y in enumerate(b.operations) if x == y]
    shared += [
        ("policies", i, j)
        for i, x in enumerate(a.policies)
        for j, y in enumerate(b.policies)
        if _policy_name(x) == _policy_name(y)
    ]
    return shared


def _conditions_disjoint(x: TagCondition, y: TagCondition) -> bool:
    """True when no tag value satisfies both conditions on the same tag."""
    if x.op == "absent" or y.op == "absent":
        other = y if x.op == "absent" else x
        return other.op in ("in", "exists")
    if x.op == "in" and y.op == "in":
        return not (x.values & y.values)
    if x.op == "in" and y.op == "not_in":
        return x.values <= y.values
    if x.op == "not_in" and y.op == "in":
        return y.values <= x.values
    return False


def scopes_disjoint(a: MatchSpec, b: MatchSpec) -> bool:
    """True when the scope filters prove no finding can satisfy both (a sound, partial check)."""
    if not set(a.resource_types) & set(b.resource_types):
        return True
    if a.subscriptions and b.subscriptions and not set(a.subscriptions) & set(b.subscriptions):
        return True
    if (
        a.resource_groups
        and b.resource_groups
        and not any(globs_overlap(x, y) for x in a.resource_groups for y in b.resource_groups)
    ):
        return True
    return any(_conditions_disjoint(x, y) for x in a.where for y in b.where if (x.tag, x.scope) == (y.tag, y.scope))


def rank(playbook: Playbook) -> int:
    """Where a playbook stands when several claim one finding: its priority; none ranks below any."""
    return -1 if playbook.priority is None else playbook.priority


# --------------------------------------------------------------------------------------------
# The loaded set.


@dataclass(frozen=True, slots=True)
class Overlay:
    """How a deployment's playbooks changed the ``base`` (shipped) set, by playbook name."""

    base: str
    added: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    disabled_by: tuple[tuple[str, str], ...] = ()  # (name, "file:line" of the entry that disabled it)


class PlaybookSet:
    """The loaded playbooks, in file order; ``match`` picks the one that claims a finding.

    Iteration, ``len``, ``get`` and matching see the enabled playbooks only; ``disabled`` lists
    the others (``enabled: false``), which claim nothing.
    """

    __slots__ = ("_by_name", "_globs", "_index", "_playbooks", "disabled", "overlay")

    def __init__(self, playbooks: Iterable[Playbook] = (), *, overlay: Overlay | None = None) -> None:
        self.overlay = overlay
        every = tuple(playbooks)
        self._playbooks = tuple(p for p in every if p.enabled)
        self.disabled: tuple[Playbook, ...] = tuple(p for p in every if not p.enabled)
        self._by_name = {p.name: p for p in self._playbooks}
        # Matching indexed by key: (kind, identifier) -> the positions of the playbooks listing it, so
        # a finding is compared with the few playbooks that name its type, not with every one (the
        # alert globs are the rest, tried for every alert).
        self._index: dict[tuple[str, str], list[int]] = {}
        self._globs: list[int] = []
        for i, p in enumerate(self._playbooks):
            spec = p.match
            keys = [("recommendation", k) for k in spec.recommendations]
            keys += [("operation", k) for k in spec.operations]
            keys += [("policy", _policy_name(k)) for k in spec.policies]
            keys += [("alert", k) for k in spec.alerts if not is_glob(k)]
            if any(is_glob(k) for k in spec.alerts):
                self._globs.append(i)
            for key in dict.fromkeys(keys):
                self._index.setdefault(key, []).append(i)

    def _listing(self, finding: Finding) -> list[Playbook]:
        """The playbooks whose identifiers could claim ``finding`` (a superset of the claims, in file
        order); ``mismatch`` decides."""
        kind, ftype = finding.kind, finding.type.strip().lower()
        if kind == "policy":
            names = {ftype}
            if finding.policy_definition_id:
                names.add(_policy_name(ids.key(finding.policy_definition_id)))
            found = {i for n in names for i in self._index.get(("policy", n), ())}
        else:
            found = set(self._index.get((kind, ftype), ()))
            if kind == "alert":
                found.update(self._globs)
        return [self._playbooks[i] for i in sorted(found)]

    def __iter__(self) -> Iterator[Playbook]:
        return iter(self._playbooks)

    def __len__(self) -> int:
        return len(self._playbooks)

    def __repr__(self) -> str:
        return f"PlaybookSet({', '.join(self._by_name)})"

    def get(self, name: str) -> Playbook | None:
        return self._by_name.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    @property
    def needs_group_tags(self) -> bool:
        """True when some playbook matches on resource-group tags (read them before ``match``)."""
        return any(p.needs_group_tags for p in self._playbooks)

    def explain(self, finding: Finding, tags: Mapping[str, str] | None = None, *,
                group_tags: Mapping[str, str] | None = None) -> list[tuple[Playbook, str | None]]:
        """Each playbook with ``None`` (it claims the finding) or why not: for ``plan --explain``."""
        return [(p, mismatch(p.match, finding, tags, group_tags=group_tags)) for p in self._playbooks]

    def candidates(self, finding: Finding) -> list[Playbook]:
        """The playbooks that would claim ``finding`` for some tags, highest priority first."""
        found = [p for p in self._listing(finding) if mismatch(p.match, finding, check_tags=False) is None]
        return sorted(found, key=rank, reverse=True)

    @staticmethod
    def match_one(playbook: Playbook, finding: Finding, tags: Mapping[str, str] | None, *,
                  group_tags: Mapping[str, str] | None = None) -> bool:
        """True when ``playbook`` alone claims ``finding`` with these tags."""
        return mismatch(playbook.match, finding, tags, group_tags=group_tags) is None

    def could_claim(self, finding: Finding) -> str | None:
        """``None`` when some playbook would claim ``finding`` for some resource tags; otherwise why
        none can (``unclaimed``). Needs no resource state: ingest uses it to drop what no playbook
        can ever claim before anything is stored."""
        if any(mismatch(p.match, finding, check_tags=False) is None for p in self._listing(finding)):
            return None
        return unclaimed(finding)

    def match(self, finding: Finding, tags: Mapping[str, str] | None = None, *,
              group_tags: Mapping[str, str] | None = None) -> Playbook | None:
        """The one playbook claiming ``finding``; ``tags`` are its resource's tags and ``group_tags``
        its resource group's (None = no tags).

        Several claims: the highest priority wins (a playbook without one ranks below any with
        one). Claims without distinct priorities raise ``PlaybookError`` naming the files (the
        loader refuses such overlaps up front; this is the fail-closed backstop).
        """
        found = [p for p in self._listing(finding) if mismatch(p.match, finding, tags, group_tags=group_tags) is None]
        if len(found) <= 1:
            return found[0] if found else None
        ranked = sorted(found, key=rank, reverse=True)
        top, second = ranked[0], ranked[1]
        if rank(top) > rank(second):
            return top
        others = ", ".join(f"{p.name} ({p.file})" for p in ranked[1:])
        raise PlaybookError(
            [
                Issue(
                    top.file,
                    top.line,
                    "priority",
                    f"{finding.kind} {finding.type} on {finding.resource_id} is claimed by {top.name} and "
                    f"{others} without distinct priorities",
                )
            ]
        )
