"""The values that flow through the core: findings, ignored records, severities.

Frozen, keyword-only dataclasses; the parser in ``findings.py`` builds them from payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

FindingKind = Literal["alert", "recommendation", "policy", "operation"]


class Severity(IntEnum):
    """Defender severities in order. ``UNKNOWN`` never satisfies ``severity_at_least``."""

    UNKNOWN = 0
    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def parse(cls, value: object) -> Severity:
        """Case-insensitive; anything unrecognised (or missing) is ``UNKNOWN``."""
        if isinstance(value, str):
            return _SEVERITY_NAMES.get(value.strip().lower(), cls.UNKNOWN)
        return cls.UNKNOWN

    @property
    def label(self) -> str:
        return self.name.capitalize()


_SEVERITY_NAMES = {s.name.lower(): s for s in Severity}


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One actionable Defender alert, failing recommendation or Policy non-compliance.

    ``resource_id`` keeps the payload's casing; compare it with ``remediator.ids.same``.
    Nested mappings (``extended_properties``, ``additional_data``, ``entities``) have their keys
    lower-cased recursively, so lookups are case-insensitive by construction.
    """

    id: str  # stable: the same event delivered twice gives the same id
    kind: FindingKind
    type: str  # alert type, assessment key (lower-case GUID), policy definition GUID, or ARM operation name
    title: str
    severity: Severity
    status: str
    resource_id: str
    subscription_id: str | None
    resource_group: str | None
    resource_type: str
    source: str  # which shape it came from: arm-alert, export-alert, assessment, sub-assessment, policy-event, …
    description: str = ""
    principal_id: str | None = None  # identity findings: the object id to act on
    policy_definition_id: str | None = None
    policy_assignment_id: str | None = None
    extended_properties: Mapping[str, str] = field(default_factory=dict)
    additional_data: Mapping[str, Any] = field(default_factory=dict)
    entities: tuple[Mapping[str, Any], ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> dict[str, str | None]:
        """The ``finding`` object of ``remediator plan --output json``."""
        return {"id": self.id, "kind": self.kind, "type": self.type, "resource_id": self.resource_id}


@dataclass(frozen=True, kw_only=True, slots=True)
class Ignored:
    """A record that is not a finding and is never acted on, with the reason in one line.

    ``resolves``: the record says a finding is healthy now (a Healthy or NotApplicable assessment,
    a resolved or dismissed alert, a Compliant policy state): the engine withdraws an open approval
    request for that ``kind``/``type``/``resource_id`` (and ``principal_id`` for identity
    sub-assessments; for alerts, the alert ``id``). It is still never acted on.
    """

    reason: str
    id: str | None = None
    kind: str | None = None
    type: str | None = None
    resource_id: str | None = None
    source: str = ""
    resolves: bool = False
    principal_id: str | None = None

    def summary(self) -> dict[str, str | None]:
        return {"id": self.id, "kind": self.kind, "type": self.type, "resource_id": self.resource_id}


Record = Finding | Ignored
