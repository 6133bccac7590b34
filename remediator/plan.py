"""Changes, per-finding results and the plan fingerprint.

A ``Change`` is one write to one ARM resource with the full documents before and after.
The fingerprint is the SHA-256 of the canonical JSON of the changes: an approval binds to it,
and apply refuses to write when a re-plan gives a different fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["update", "delete", "create", "invoke"]
Outcome = Literal["changes", "no_changes", "no_match", "ignored", "exempt", "error"]
OPERATIONS: tuple[Operation, ...] = ("update", "delete", "create", "invoke")


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One write. ``before``/``after`` are full ARM documents (``None`` where none exists).

    For ``invoke`` (a POST action such as ``regenerateCredential``) ``resource_id`` is the action
    URL path and ``after`` the request body. ``note`` is a one-line human summary.
    """

    action: str
    resource_id: str
    operation: Operation
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource_id": self.resource_id,
            "operation": self.operation,
            "before": self.before,
            "after": self.after,
        }


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(changes: Sequence[Change]) -> str:
    """``sha256:<hex>`` of the canonical JSON of the changes, in order."""
    body = canonical_json([c.to_json() for c in changes]).encode()
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, kw_only=True, slots=True)
class Result:
    """What ``plan`` decided for one record (one line of ``--output json``)."""

    finding: Mapping[str, str | None]
    playbook: str | None
    outcome: Outcome
    reason: str
    changes: tuple[Change, ...] = ()
    risk: str | None = None
    title: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the plan could not check, and how to supply it

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.changes) if self.changes else None

    def to_json(self) -> dict[str, Any]:
        return {
            "finding": dict(self.finding),
            "playbook": self.playbook,
            "outcome": self.outcome,
            "reason": self.reason,
            "changes": [c.to_json() for c in self.changes],
            "warnings": list(self.warnings),
        }
