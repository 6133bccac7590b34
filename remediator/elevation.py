"""Privilege for one change: the port and its strategies.

The executor identity holds no standing write role. Before a write, an ``Elevator`` grants the
action's least-privileged role on exactly the one resource (``elevate``); after it, the grant is
released (``release``), also when the write failed. Strategies, chosen per deployment:

* ``standing``: explicit opt-out; the executor already holds the role. Every change is logged
  (and audited) as made under standing privilege.
* ``pim-assign`` (the default in Azure) and ``pim-activate``: PIM time-bound assignments
  (see the classes below).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from remediator.actions.base import Action
from remediator.plan import Change
from remediator.store.base import Remediation

log = logging.getLogger("remediator.elevation")


@dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """What was granted for one change; recorded in the audit trail."""

    strategy: str
    role_name: str
    role_id: str
    scope: str
    principal_id: str | None = None
    request_id: str | None = None  # the PIM schedule request name (GUID)
    status: str = ""  # PIM status (Provisioned, …) or "Standing"
    expires_at: datetime | None = None

    def audit(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "role": self.role_name, "role_id": self.role_id, "scope": self.scope,
            "principal_id": self.principal_id, "request_id": self.request_id, "status": self.status,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


class Elevator(Protocol):
    strategy: str

    def elevate(self, *, action: Action[Any], change: Change, remediation: Remediation) -> Grant:
        """Grant ``action.role`` on the change's resource; raise ``ActionError`` when not granted."""

    def release(self, grant: Grant) -> None:
        """Remove the grant if allowed now, else leave it to expire; never raises for a failed release."""


def grant_scope(change: Change) -> str:
    """The ARM scope a grant for ``change`` covers: the resource itself.

    Invoke changes target an action URL (``…/registries/r/regenerateCredential``): the scope is the
    resource that owns the action. Key Vault secret changes carry a data-plane URL and are not ARM
    scopes: they are covered by the vault's own role assignment, not by this grant.
    """
    rid = change.resource_id
    if change.operation == "invoke" and "/" in rid.rstrip("/"):
        return rid.rstrip("/").rsplit("/", 1)[0]
    return rid


class StandingElevator:
    """Explicit opt-in: no grant is made; each change is logged as done under standing privilege."""

    strategy = "standing"

    def elevate(self, *, action: Action[Any], change: Change, remediation: Remediation) -> Grant:
        scope = grant_scope(change)
        log.warning("standing privilege: %s on %s for remediation %s (role %s is held permanently)",
                    action.name, scope, remediation.id, action.role.name)
        return Grant(strategy=self.strategy, role_name=action.role.name, role_id=action.role.id, scope=scope,
                     status="Standing")

    def release(self, grant: Grant) -> None:
        return None
