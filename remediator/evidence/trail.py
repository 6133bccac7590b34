"""Rendering the audit trail: who did what to which remediation, when (``remediator audit``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.lifecycle.model import AuditEvent

_CONTROL = str.maketrans(dict.fromkeys([*map(chr, range(32)), "\x7f"], "?"))


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text.translate(_CONTROL)


def _detail(detail: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in detail.items() if v not in (None, "", [], {}))


def render_audit(events: Sequence[AuditEvent]) -> str:
    """One line per event: time, remediation, event, actor, details (control characters replaced)."""
    if not events:
        return "(no audit events)\n"
    lines = []
    for e in events:
        when = e.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        rem = e.remediation_id or "-"
        lines.append(f"{when}  {rem:<22}  {e.event:<20}  {_value(e.actor):<18}  {_detail(e.detail)}".rstrip())
    return "\n".join(lines) + "\n"


def audit_json(events: Sequence[AuditEvent]) -> dict[str, Any]:
    """``{"events": [...]}`` for ``remediator audit --output json``."""
    return {"events": [{"seq": e.seq, "at": e.at.isoformat(), "remediation_id": e.remediation_id,
                        "event": e.event, "actor": e.actor, "detail": dict(e.detail)} for e in events]}
