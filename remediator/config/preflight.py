"""The result of a preflight check of a deployment: one line, ``ok`` or what to fix.

``remediator doctor`` (``remediator.app.doctor``: settings, playbooks, store, ARM, roles) and the
Slack adapter's checks (``bot.doctor``: token, scopes, channel) both report ``Check`` values, so
the adapter converts Slack's answers into the core's type and imports nothing of the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Check:
    """One line of the report: ``ok`` and a message that says what was found or what to fix."""

    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.message}"


def passed(checks: Iterable[Check]) -> bool:
    return all(c.ok for c in checks)


def render(checks: Sequence[Check]) -> str:
    failed = sum(1 for c in checks if not c.ok)
    summary = "all checks passed" if not failed else f"{failed} of {len(checks)} checks failed"
    return "".join(c.line() + "\n" for c in checks) + summary + "\n"
