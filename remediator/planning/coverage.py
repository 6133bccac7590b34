"""Which assigned Azure Policy definitions remediator can fix, with which playbook, and why not.

Two questions, one answer shape (:class:`Row`):

* **a tenant** (``remediator coverage``): its policy assignments (live, or ``az policy assignment
  list``) and their compliance summary (live PolicyInsights summarize, or ``az policy state
  summarize``): per assigned definition, the playbook that claims it (or why none can), and how many
  non-compliant resources it covers. An initiative's member definitions come from the summary.
* **the catalog** (``docs/coverage.md``): every built-in definition of the shipped catalog
  (``remediator/playbooks/policy-catalog.tsv``) against the shipped playbooks.

A definition is claimed by the highest-ranked playbook whose ``match.policies`` lists it (GUID or
full id; ``policy_categories`` expand into it) and whose resource types meet the definition's; a
``policy.apply-modify`` playbook claims only definitions whose effect can be Modify. Otherwise the
reason comes from the catalog's classification (``class`` and ``note``) or from the definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from remediator import ids
from remediator.actions.modify import definition_properties, effect_can_be_modify
from remediator.errors import RemediatorError
from remediator.findings.model import Finding, Severity
from remediator.playbooks import Playbook, PlaybookSet
from remediator.playbooks.catalog import CatalogEntry, by_id, catalog
from remediator.playbooks.excused import EXCUSED
from remediator.playbooks.loader import action_type_key
from remediator.playbooks.match import claims, rank

MODIFY_ACTION = "policy.apply-modify"
Lookup = Callable[[str], Mapping[str, Any] | None]

WHY = {
    "a": "the shipped playbooks match the Defender recommendation that mirrors it, not the definition",
    "b0": "an existing action makes this change, but no playbook lists the definition yet",
    "b": "fixable by setting properties; no playbook lists it yet",
    "c": "needs more than a property change",
    "d": "not a configuration change remediator makes",
}

# A Private Link definition no playbook claims: remediator builds endpoints and zone groups
# (remediator.actions.private_link), so the reason is narrower than class c's
PRIVATE_LINK_WHY = {
    "private endpoint": "network.create-private-endpoint makes it, but no playbook lists the definition",
    "private DNS zone group": "network.create-private-dns-zone-group makes it for the types of its zone table "
                              "(remediator.actions.private_link_table), but no playbook lists the definition",
}


def _private_link_why(entry: CatalogEntry) -> str:
    from remediator.actions.private_link_table import SUPPORTED_TYPES  # noqa: PLC0415

    if entry.note == "private endpoint" and not any(ids.type_key(t) in SUPPORTED_TYPES for t in entry.resource_types):
        return ("a private endpoint to a type whose connection no built-in role narrower than Contributor approves "
                "(remediator never grants Contributor; a custom role would do)")
    return PRIVATE_LINK_WHY[entry.note]


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One assigned (or catalog) definition: who fixes it, or why nobody can."""

    definition_id: str
    display_name: str
    category: str = ""
    assignment_id: str = ""
    initiative_id: str = ""
    effect: str = ""
    playbook: str | None = None
    reason: str = ""
    non_compliant: int | None = None
    catalog_class: str = ""
    resource_types: tuple[str, ...] = field(default_factory=tuple)
    roles: tuple[str, ...] = field(default_factory=tuple)
    """A Modify definition's roleDefinitionIds (GUIDs), where its definition was read: what
    ``policy.apply-modify`` asks PIM for (the deployment's ``modifyRoleIds``)."""

    @property
    def fixable(self) -> bool:
        return self.playbook is not None

    def to_json(self) -> dict[str, Any]:
        return {"definition_id": self.definition_id, "display_name": self.display_name, "category": self.category,
                "assignment_id": self.assignment_id or None, "initiative_id": self.initiative_id or None,
                "effect": self.effect or None, "fixable": self.fixable, "playbook": self.playbook,
                "reason": self.reason, "non_compliant_resources": self.non_compliant,
                "catalog_class": self.catalog_class or None, "resource_types": list(self.resource_types),
                "roles": list(self.roles)}


def _name(definition_id: str) -> str:
    return definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _full_id(ref: str) -> str:
    ref = ref.strip()
    return ref if ref.startswith("/") else f"/providers/Microsoft.Authorization/policyDefinitions/{ref}"


def _policy_finding(definition_id: str) -> Finding:
    return Finding(id=f"coverage:{definition_id}", kind="policy", type=_name(definition_id), title="",
                   severity=Severity.UNKNOWN, status="NonCompliant", resource_id="", subscription_id=None,
                   resource_group=None, resource_type="", source="coverage",
                   policy_definition_id=definition_id if definition_id.startswith("/") else None)


def rule_types(props: Mapping[str, Any]) -> tuple[str, ...]:
    """The resource types a definition's ``if`` names (``field: type`` with ``equals`` or ``in``)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if str(node.get("field", "")).lower() == "type":
                value = node.get("equals", node.get("in"))
                found.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk((props.get("policyRule") or {}).get("if"))
    return tuple(dict.fromkeys(found))


class Coverage:
    """Answers for one playbook set; ``definition`` reads a definition by id (live or saved), or None."""

    def __init__(self, playbooks: PlaybookSet, definition: Lookup | None = None) -> None:
        self.playbooks = playbooks
        self.definition = definition or (lambda _id: None)
        self._props: dict[str, Mapping[str, Any] | None] = {}
        self.unread: dict[str, str] = {}

    def props(self, definition_id: str) -> Mapping[str, Any] | None:
        key = ids.key(_full_id(definition_id))
        if key not in self._props:
            try:
                doc = self.definition(_full_id(definition_id))
            except RemediatorError as e:  # unreadable: "not read", and why, in the reason
                self.unread[key] = str(e)
                doc = None
            self._props[key] = definition_properties(doc) if doc else None
        return self._props[key]

    def row(self, definition_id: str, *, assignment_id: str = "", initiative_id: str = "", effect: str = "",
            non_compliant: int | None = None) -> Row:
        entry = by_id().get(_name(definition_id))
        props = self.props(definition_id)
        display = (entry.display_name if entry else "") or str((props or {}).get("displayName") or "") or \
            _name(definition_id)
        category = entry.category if entry else str(((props or {}).get("metadata") or {}).get("category") or "")
        types = entry.resource_types if entry else rule_types(props or {})
        playbook, reason = self.claim(definition_id, entry, props, types)
        if effect.lower() == "disabled":
            playbook, reason = None, "the assignment's effect is Disabled: it reports nothing"
        roles: tuple[str, ...] = ()
        if props is not None and effect_can_be_modify(props):
            details = ((props.get("policyRule") or {}).get("then") or {}).get("details") or {}
            roles = tuple(dict.fromkeys(str(r).rstrip("/").rsplit("/", 1)[-1].lower()
                                        for r in (details.get("roleDefinitionIds") or []) if isinstance(r, str)))
        return Row(definition_id=_full_id(definition_id), display_name=display, category=category,
                   assignment_id=assignment_id, initiative_id=initiative_id, effect=effect, playbook=playbook,
                   reason=reason, non_compliant=non_compliant, catalog_class=entry.klass if entry else "",
                   resource_types=types, roles=roles)

    def claim(self, definition_id: str, entry: CatalogEntry | None, props: Mapping[str, Any] | None,
              types: Sequence[str]) -> tuple[str | None, str]:
        finding = _policy_finding(_full_id(definition_id))
        # in MatchSpec form: a definition on Microsoft.Resources/subscriptions is a playbook's `subscription`
        wanted = {action_type_key(t) for t in types}
        refused: list[str] = []
        for p in sorted((p for p in self.playbooks if claims(p.match, finding)), key=rank, reverse=True):
            if wanted and not wanted & set(p.match.resource_types):
                refused.append(f"{p.name} lists it but not its resource types ({', '.join(types)})")
                continue
            if any(s.action == MODIFY_ACTION for s in p.steps) and not self._modify(entry, props):
                refused.append(f"{p.name} runs {MODIFY_ACTION}, and this definition's effect cannot be Modify")
                continue
            actions = ", ".join(dict.fromkeys(s.action for s in p.steps))
            partial = [t for t in types if action_type_key(t) not in p.match.resource_types]
            extra = f"; not for {', '.join(partial)}" if partial else ""
            return p.name, f"{actions}{extra}"
        if refused:
            return None, "; ".join(refused)
        if self._modify(entry, props):
            category = entry.category if entry else ""
            how = f"match.policy_categories: [{category}] or " if category else ""
            return None, (f"a Modify definition: a playbook running {MODIFY_ACTION} fixes it once it opts in "
                          f"({how}match.policies)")
        excused = EXCUSED.get(_name(definition_id).lower())
        if excused is not None:
            return None, f"not claimed: {excused}"
        if entry is not None and entry.klass == "c" and entry.note in PRIVATE_LINK_WHY:
            return None, _private_link_why(entry)
        if entry is not None:
            why = WHY.get(entry.klass, "no playbook lists it")
            return None, f"{why} ({entry.note})" if entry.note and entry.klass in ("c", "d") else why
        if props is None:
            unread = self.unread.get(ids.key(_full_id(definition_id)))
            return None, ("not in remediator's catalog, and its definition was not read"
                          + (f" ({unread})" if unread else " (give --definitions)"))
        return None, "no playbook lists this definition"

    @staticmethod
    def _modify(entry: CatalogEntry | None, props: Mapping[str, Any] | None) -> bool:
        if props is not None:
            return effect_can_be_modify(props)
        return entry is not None and entry.can_modify

    # --- a tenant -----------------------------------------------------------------------------------

    def tenant(self, assignments: Iterable[Mapping[str, Any]], summaries: Iterable[Mapping[str, Any]]) -> list[Row]:
        """One row per assigned definition (an initiative's members from the summary), with its
        non-compliant resource count where a summary gives one."""
        counts: dict[tuple[str, str], tuple[int, str]] = {}
        members: dict[str, list[str]] = {}
        sets: dict[str, str] = {}
        for summary in _summaries(summaries):
            for a in summary.get("policyAssignments") or []:
                if not isinstance(a, Mapping):
                    continue
                aid = ids.key(str(a.get("policyAssignmentId") or ""))
                if a.get("policySetDefinitionId"):
                    sets[aid] = str(a["policySetDefinitionId"])
                for d in a.get("policyDefinitions") or []:
                    if not isinstance(d, Mapping) or not d.get("policyDefinitionId"):
                        continue
                    did = str(d["policyDefinitionId"])
                    n = (d.get("results") or {}).get("nonCompliantResources")
                    counts[(aid, ids.key(did))] = (int(n) if isinstance(n, int) else 0, str(d.get("effect") or ""))
                    members.setdefault(aid, []).append(did)
        rows: list[Row] = []
        seen: set[str] = set()
        for doc in assignments:
            aid = str(doc.get("id") or "")
            inner = doc.get("properties")
            given: Mapping[str, Any] = inner if isinstance(inner, Mapping) else doc  # ARM, or az's flattened shape
            target = str(given.get("policyDefinitionId") or "")
            seen.add(ids.key(aid))
            rows.extend(self._assignment_rows(aid, target, members.get(ids.key(aid), []), counts))
        for aid, dids in members.items():  # in the summary only (assignment list not given, or another scope)
            if aid not in seen:
                rows.extend(self._assignment_rows(aid, sets.get(aid, ""), dids, counts))
        return rows

    def _assignment_rows(self, aid: str, target: str, member_ids: list[str],
                         counts: Mapping[tuple[str, str], tuple[int, str]]) -> list[Row]:
        akey = ids.key(aid)
        is_set = "/policysetdefinitions/" in target.lower()
        if not is_set and target:
            n, effect = counts.get((akey, ids.key(target)), (None, ""))
            return [self.row(target, assignment_id=aid, effect=effect, non_compliant=n)]
        if not member_ids:
            return [Row(definition_id=target, display_name=_name(target), assignment_id=aid, initiative_id=target,
                        reason="an initiative: its member definitions are listed by the compliance summary "
                               "(live, or az policy state summarize)")]
        return [self.row(did, assignment_id=aid, initiative_id=target, effect=counts[(akey, ids.key(did))][1],
                         non_compliant=counts[(akey, ids.key(did))][0])
                for did in dict.fromkeys(member_ids)]

    # --- the catalog ---------------------------------------------------------------------------------

    def catalog(self) -> list[Row]:
        """Every definition of the shipped catalog against the playbooks."""
        return [self.row(e.id) for e in catalog()]


def _summaries(values: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """PolicySummary objects from SummarizeResults (``{"value": [...]}``) or ``az policy state summarize``."""
    out: list[Mapping[str, Any]] = []
    for v in values:
        if isinstance(v.get("value"), list):
            out.extend(x for x in v["value"] if isinstance(x, Mapping))
        elif "policyAssignments" in v:
            out.append(v)
    return out


def totals(rows: Sequence[Row]) -> dict[str, int]:
    fixable = [r for r in rows if r.fixable]
    return {"definitions": len(rows), "fixable": len(fixable),
            "non_compliant_resources": sum(r.non_compliant or 0 for r in rows),
            "non_compliant_fixable": sum(r.non_compliant or 0 for r in fixable)}


def modify_roles(rows: Sequence[Row], playbooks: PlaybookSet) -> list[str]:
    """The roles the rows' Modify fixes would ask PIM for: the roleDefinitionIds of the definitions a
    ``policy.apply-modify`` playbook claims (what the deployment lists in ``modifyRoleIds``)."""
    modifying = {p.name for p in playbooks if any(s.action == MODIFY_ACTION for s in p.steps)}
    return sorted({role for r in rows if r.playbook in modifying for role in r.roles})


def by_playbook(rows: Sequence[Row], playbooks: Iterable[Playbook]) -> dict[str, int]:
    """How many of ``rows`` each playbook claims (every playbook listed, 0 where none)."""
    out = {p.name: 0 for p in playbooks}
    for r in rows:
        if r.playbook is not None:
            out[r.playbook] = out.get(r.playbook, 0) + 1
    return out
