"""What the engine is given to answer the admins' report commands, by whoever wires it.

The engine authorises and audits ``/remediate doctor`` and ``/remediate report``; the checks and
the figures belong to layers above it (``remediator.app.doctor``, ``remediator.evidence``), so
the composition root hands them in as these two ports (``remediator.app.wiring``). An engine
built without them answers that the command is not available here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from remediator.config.settings import Settings

SlackChecks = Callable[[Settings], Sequence[Any]]  # the Slack side's checks (``bot.doctor.check_slack``)


@dataclass(frozen=True, kw_only=True, slots=True)
class PreflightReport:
    """The preflight's outcome: what to show the admin and what to audit."""

    passed: bool
    failed: tuple[str, ...]  # the names of the checks that failed
    text: str  # one line per check, as ``remediator doctor`` prints them


class Preflight(Protocol):
    """``remediator doctor``'s checks on this running deployment: its playbooks, store, ARM
    identities and roles, and with ``slack`` the Slack side's (``remediator.app.doctor.deployment_preflight``)."""

    def __call__(self, *, slack: SlackChecks | None) -> PreflightReport: ...


class EvidenceTotals(Protocol):
    """The evidence report's totals for a period (``remediator.evidence.report.period_totals``);
    ``period`` is a ``remediator.evidence.period.Period``, passed through untouched."""

    def __call__(self, period: Any, *, now: datetime) -> Mapping[str, int]: ...
