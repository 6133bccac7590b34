"""The values a remediation stores: a ``Finding`` and its ``Change``s as JSON documents, and back.

``Remediation.finding`` keeps everything a re-plan needs (all of the finding but ``raw``, the
severity as its label); ``Remediation.changes`` keeps each ``Change.to_json()`` plus its ``note``.
The inbox stores the same finding document (``Inbound.finding``). The store's own encoding of the
records around them (datetimes, votes, the document as text) is ``remediator.store.codec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from remediator.actions.change import Change
from remediator.findings.model import Finding, FindingKind, Severity


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
    return {**c.to_json(), "note": c.note, **({"roles": [list(r) for r in c.roles]} if c.roles else {})}


def change_from_json(m: Mapping[str, Any]) -> Change:
    before, after = m.get("before"), m.get("after")
    return Change(action=str(m["action"]), resource_id=str(m["resource_id"]), operation=m["operation"],
                  before=dict(before) if before is not None else None,
                  after=dict(after) if after is not None else None, note=str(m.get("note", "")),
                  roles=_roles(m.get("roles")))


def _roles(value: Any) -> tuple[tuple[str, str], ...]:
    """A change's ``roles`` as stored (``[[guid, name], …]``); anything else is none."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple((r[0], r[1]) for r in value
                 if isinstance(r, list | tuple) and len(r) == 2 and all(isinstance(v, str) for v in r))
