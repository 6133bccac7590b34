"""Findings reported healthy: the signal a ``resolved`` job carries, and the keys it matches.

A health report (``Ignored.resolves``: a Healthy assessment, a resolved alert, a Compliant policy
state) withdraws the pending requests of the findings it matches. They match by key: an alert by
its id; other findings by kind, type and resource, identity sub-assessments also by principal (a
healthy parent assessment resolves every principal; a healthy sub-assessment only its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediator import ids
from remediator.findings.model import Ignored

REASON_MAX = 200  # characters of the health report's reason carried in a job


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthSignal:
    """One record that reports a finding healthy, as a ``resolved`` job carries it."""

    kind: str | None = None
    type: str | None = None
    resource_id: str | None = None
    id: str | None = None
    principal_id: str | None = None
    reason: str = ""

    @classmethod
    def of(cls, record: Ignored) -> HealthSignal:
        return cls(kind=record.kind, type=record.type, resource_id=record.resource_id, id=record.id,
                   principal_id=record.principal_id, reason=record.reason[:REASON_MAX])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "type": self.type, "resource_id": self.resource_id, "id": self.id,
                "principal_id": self.principal_id, "reason": self.reason}

    @classmethod
    def from_json(cls, m: Mapping[str, Any]) -> HealthSignal:
        def opt(key: str) -> str | None:
            value = m.get(key)
            return None if value is None else str(value)

        return cls(kind=opt("kind"), type=opt("type"), resource_id=opt("resource_id"), id=opt("id"),
                   principal_id=opt("principal_id"), reason=str(m.get("reason") or ""))

    def key(self) -> tuple[str, ...] | None:
        """The finding key this report resolves (see ``finding_keys``), or None when it names none."""
        if self.kind == "alert" and self.id:
            return ("alert", self.id.lower())
        if not (self.resource_id and self.type):
            return None
        base = (self.kind or "", self.type.lower(), ids.key(self.resource_id))
        return (*base, self.principal_id.lower()) if self.principal_id else base


def finding_keys(f: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The keys a health report of this stored finding matches (the most specific first)."""
    kind = str(f.get("kind") or "")
    if kind == "alert":
        return [("alert", str(f.get("id") or "").lower())]
    base = (kind, str(f.get("type") or "").lower(), ids.key(str(f.get("resource_id") or "")))
    principal = f.get("principal_id")
    return [(*base, str(principal).lower()), base] if principal else [base]
