"""An action's write under a real PIM grant on FakeArm, the way the worker does it, and role coverage.

* ``pim_apply(arm, action, change)`` does what the worker does for one change: the default
  ``pim-assign`` strategy (``PimAssignElevator``) creates an ``AdminAssign`` schedule request for the
  executor ``EXEC`` with the action's role at the change's scope, runs ``action.apply`` with the
  executor's clients, and removes the grant; then it asserts that every grant the executor was
  given is released (removed, not left to expire) and that this write's was scoped to the change
  (``grant_scope``: the resource, or the narrowest existing scope). With
  ``refused_first=True`` it first enforces grants for the action's role and asserts that the same
  write without a grant is refused (403 through the real SDK).
* ``covers(role_actions, operation)``: whether a role's ``actions`` (wildcards as Azure RBAC
  matches them, case-insensitive) include ``operation``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

import pytest

from remediator import ids
from remediator.actions.base import Action, ApplyResult
from remediator.actions.change import Change
from remediator.azure.errors import Backoff
from remediator.errors import ActionError
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm

EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def approved(change: Change) -> Ticket:
    """What the grant for ``change`` is requested for (the remediation id and approver go into the justification)."""
    return Ticket(remediation_id="rem-pim01", fingerprint="sha256:" + "ab" * 32, approvers=("U0APPROVE1",))


def quick_elevator(arm: FakeArm, *, executor: str = EXEC, broker: str = BROKER) -> PimAssignElevator:
    """The PIM-assign elevator of a scenario on ``arm``: ``broker`` grants ``executor``; polls and waits take
    no time (the fake answers at once)."""
    return PimAssignElevator(broker=arm.clients(principal_id=broker), executor_principal_id=executor,
                             poll_interval=0.01, sleep=lambda _s: None,
                             propagation_backoff=Backoff(initial=0.01, cap=0.02))


def pim_apply(arm: FakeArm, action: Action[Any], change: Change, *, refused_first: bool = False) -> ApplyResult:
    """Elevate (PIM AdminAssign of ``action.role`` at the change's scope), apply, release; see the module docstring."""
    executor = arm.clients(principal_id=EXEC)
    if refused_first:
        arm.enforce_grants(EXEC, role_id=action.grants(change)[0].role.id)
        with pytest.raises(ActionError, match="AuthorizationFailed"):
            action.apply(executor, change)
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                                 sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0,
                                 propagation_backoff=Backoff(initial=0.01, cap=0.04))
    grant = elevator.elevate(action=action, change=change, ticket=approved(change))
    try:
        result = elevator.run(grant, lambda: action.apply(executor, change), clients=executor)
    finally:
        elevator.release(grant)
    grants = arm.pim_grants(EXEC, active_only=False)
    assert grants, "the apply ran under no PIM grant"
    assert arm.pim_grants(EXEC) == [], f"a grant outlived the apply: {arm.pim_grants(EXEC)}"
    assert [g.ended for g in grants] == ["removed"] * len(grants)  # released, not left to expire
    newest = grants[-1]  # in the order PIM created them: this write's
    assert ids.key(newest.scope) == ids.key(action.grant_scope(change)), (newest.scope, change.resource_id)
    return result


def covers(role_actions: Sequence[str], operation: str) -> bool:
    return any(fnmatch.fnmatchcase(operation.lower(), pattern.lower()) for pattern in role_actions)


def pim_engine(arm: FakeArm, store: Any, settings: Any, *, executor: str = EXEC, broker: str = BROKER,
               chat: Any = None, clock: Any = None) -> Any:
    """An ``Engine`` on FakeArm whose writes need PIM grants: the shipped playbooks, live reads, the
    executor's clients, ``quick_elevator``, the on-call group as approvers (the Private Link scenarios)."""
    from remediator.azure.reader import LiveState
    from remediator.lifecycle.engine import Engine
    from tests.support.engine import MEMBERS, ONCALL, PLAYBOOKS, FakeClock, RecordingChat, StaticDirectory

    return Engine(store=store, settings=settings, playbooks=PLAYBOOKS, state=LiveState(arm.clients()),
                  clients=arm.clients(principal_id=executor), elevator=quick_elevator(arm, executor=executor,
                                                                                      broker=broker),
                  chat=chat if chat is not None else RecordingChat(), directory=StaticDirectory({ONCALL: MEMBERS}),
                  clock=clock if clock is not None else FakeClock())
