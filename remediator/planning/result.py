"""What ``plan`` decided for one record: the outcome, the reason and the changes (one line of
``--output json``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from remediator.actions.change import Change, fingerprint

Outcome = Literal["changes", "no_changes", "no_match", "ignored", "exempt", "error"]


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
    advice: tuple[str, ...] = ()  # no change: a message for people (evidence, recommended steps), one line each

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
            **({"advice": list(self.advice)} if self.advice else {}),
        }
