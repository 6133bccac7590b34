"""The contract every registered action keeps, driven by its own docstring playbook example.

For each action in ``remediator.actions.REGISTRY``, with the case of tests/support/contract.py:
the docstring's playbook loads through the real loader; FakeArm serves the spec-example resource
made non-compliant; the real planner (reading live through the SDK clients) matches the finding to
the playbook and plans the expected operations, read-only and deterministic; each change is refused
without a grant, then applied as the worker does (PimAssignElevator: a PIM AdminAssign of the
action's role at the change's scope, apply, release), every write under that one grant, released
afterwards; verify passes and a re-plan is compliant. A reversible action's undo goes the same way
and puts the documents back as they were; an irreversible one refuses to undo.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from remediator import ids
from remediator.actions import REGISTRY, Action
from remediator.actions.change import Change, grant_scope, is_arm_scope
from remediator.azure.errors import Backoff
from remediator.azure.reader import LiveState
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.planning.planner import Planner
from remediator.planning.result import Result
from remediator.playbooks import Playbook, PlaybookSet
from remediator.playbooks.loader import load_playbook_file
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm
from tests.support.builders import docstring_playbook, make_finding
from tests.support.contract import CASES, NOW, Case

EXECUTOR = "7a0c4e2b-91d3-4f6a-8b5c-2e3d4f5a6b7c"
BROKER = "c3d2e1f0-a9b8-4c7d-8e6f-5a4b3c2d1e0f"
ALWAYS_SERVER_SET = frozenset({"provisioningState"})


def test_every_case_is_a_registered_action() -> None:
    stale = sorted(set(CASES) - set(REGISTRY))
    assert not stale, f"tests/support/contract.py: CASES names unregistered actions {stale}: remove them"


def _actions() -> list[Any]:
    """Every registered action; a case with a known bug outside the action is a strict xfail."""
    bugs = {name: case.known_bug for name, case in CASES.items() if case.known_bug}
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=bugs[name]) if name in bugs else ())
            for name in sorted(REGISTRY)]


@pytest.mark.parametrize("name", _actions())
def test_action_keeps_the_contract(name: str, tmp_path: Path) -> None:
    if REGISTRY[name].directory_permissions:
        pytest.skip("a Microsoft Graph action: test_graph_action_keeps_the_contract")
    case = CASES.get(name)
    if case is None:
        pytest.fail(f"{name}: no contract case; add one to CASES in tests/support/contract.py (the resource its "
                    "docstring playbook fixes, made non-compliant)", pytrace=False)
    action = REGISTRY[name]
    path = tmp_path / "example.yaml"
    path.write_text(docstring_playbook(action), encoding="utf-8")
    playbook = load_playbook_file(path)
    finding = _finding(playbook, case)
    with FakeArm() as arm:
        arm.load(case.docs())
        arm.enforce_grants(EXECUTOR, role_id=action.role.id)
        result = _plan(arm, playbook, finding, case)
        assert result.playbook == playbook.name, result.reason
        assert arm.writes == []  # planning only reads
        if case.refused:
            assert (result.outcome, result.changes) == ("error", ()), result.reason
            assert case.refused in result.reason
            return
        if case.advice:  # a message instead of a change: advice, nothing written, nothing to grant
            assert (result.outcome, result.changes) == ("no_changes", ()), result.reason
            assert all(word in " ".join(result.advice) for word in case.advice), result.advice
            assert arm.writes == []
            return
        assert (result.outcome, result.warnings) == ("changes", ()), result.reason
        changes = result.changes
        arm.enforce_grants(EXECUTOR, role_id=action.grants(changes[0])[0].role.id)  # a plan may choose the role
        assert [c.operation for c in changes] == list(case.operations)
        assert {c.action for c in changes} == {name}
        assert _plan(arm, playbook, finding, case).fingerprint == result.fingerprint  # what an approval binds to

        for change in changes:
            _apply_as_the_worker(arm, action, change, result)
        again = _plan(arm, playbook, finding, case)
        if case.compliant_after:
            assert again.outcome == "no_changes", again.reason

        if not action.reversible:
            for change in changes:
                with pytest.raises(ActionError, match="cannot be undone"):
                    action.undo(change)
            return
        for change in reversed(changes):
            _apply_as_the_worker(arm, action, action.undo(change), result)
        for change in changes:
            _assert_restored(arm, change, case.server_set | ALWAYS_SERVER_SET)
        back = _plan(arm, playbook, finding, case)
        assert [c.operation for c in back.changes] == list(case.operations), back.reason


def _finding(playbook: Playbook, case: Case) -> Finding:
    """A finding the playbook claims: its first listed recommendation, policy, alert or operation."""
    spec = playbook.match
    kind, value = next((k, v[0]) for k, v in (("recommendation", spec.recommendations), ("policy", spec.policies),
                                               ("alert", spec.alerts), ("operation", spec.operations)) if v)
    policy_id = value if kind == "policy" and value.startswith("/") else None  # a custom definition's full id
    extra = dict(case.finding)
    found = make_finding(case.target, kind=extra.pop("kind", kind),
                         type=extra.pop("type", value.rsplit("/", 1)[-1] if policy_id else value), **extra)
    return replace(found, policy_definition_id=policy_id) if policy_id else found


def _plan(arm: FakeArm, playbook: Playbook, finding: Finding, case: Case) -> Result:
    planner = Planner(playbooks=PlaybookSet([playbook]), state=LiveState(arm.clients()), now=NOW,
                      today=NOW.date(), settings=case.settings)
    return planner.plan_one(finding)


def _apply_as_the_worker(arm: FakeArm, action: Action[Any], change: Change, result: Result) -> None:
    """Refused without a grant (nothing written: verify still fails); then elevate, apply, release and
    verify, as ``Worker._apply_one`` does."""
    executor = arm.clients(principal_id=EXECUTOR)
    scope = action.grant_scope(change)
    role = action.grants(change)[0].role  # the action's, or the one its plan chose (a Modify definition's)
    granted_scope = is_arm_scope(scope)  # a Key Vault write is the deployment's role on the vault, unless it reads ARM
    if granted_scope:
        start = len(arm.requests)
        with pytest.raises(ActionError, match="AuthorizationFailed"):
            action.apply(executor, change)
        # refused and nothing written: the write answered 403, or a read the action makes first was refused
        # (acr.rotate-credentials lists the credentials before it regenerates one)
        answered = [r.status for r in arm.requests[start:]]
        assert answered[-1:] == [403], answered
        assert all(w.status == 403 for w in arm.requests[start:] if w.is_write)
    # not yet: verify can tell (one that reads under the grant may only say that it cannot read)
    if action.verify_under_grant:
        with contextlib.suppress(ActionError):
            assert action.verify(LiveState(arm.clients()), change) is not None
    else:
        assert action.verify(LiveState(arm.clients()), change) is not None
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXECUTOR,
                                 sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0,
                                 propagation_backoff=Backoff(initial=0.01, cap=0.02))
    start, granted = len(arm.requests), len(arm.pim_grants(EXECUTOR, active_only=False))
    needs = action.grants(change)  # every scope the write needs (a diagnostic setting's destination too)
    held = [elevator.elevate(action=action, change=change, ticket=_ticket(result), need=need) for need in needs]
    grant = held[0]
    granted_problem: str | None = None
    try:
        applied = elevator.run(grant, lambda: action.apply(executor, change), clients=executor)
        if action.verify_under_grant:  # as the worker: its verify reads what only the grant allows
            granted_problem = elevator.run(grant, lambda: action.verify(LiveState(executor), change),
                                           clients=executor)
    finally:
        for each in reversed(held):
            elevator.release(each)
    assert applied.change == change
    writes = [r for r in arm.requests[start:] if r.is_write and not r.is_pim]
    assert writes, f"{change.operation} of {change.resource_id} wrote nothing"
    assert {(w.principal, w.status < 300) for w in writes} == {(EXECUTOR, True)}
    grants = arm.pim_grants(EXECUTOR, active_only=False)[granted:]
    if granted_scope:
        assert (grant.status, grant.role_id, grant.scope) == ("Provisioned", role.id, scope)
        assert scope == grant_scope(change) or not is_arm_scope(change.resource_id)  # only a vault write reads ARM
        assert [(g.role_definition_id.rsplit("/", 1)[-1], ids.key(g.scope), g.ended) for g in grants] == \
            [(need.role.id, ids.key(need.scope), "removed") for need in needs]
        arm_writes = [w.path for w in writes if w.path.lower().startswith("/subscriptions/")]  # not the vault
        assert all(ids.is_under(path, grant.scope) for path in arm_writes), arm_writes
    else:
        assert (grant.status, grants) == ("NotRequired", [])
    assert arm.pim_grants(EXECUTOR) == []  # released
    if action.verify_under_grant:
        assert granted_problem is None
    else:
        assert action.verify(LiveState(arm.clients()), change) is None


def _ticket(result: Result) -> Ticket:
    return Ticket(remediation_id="rem-contract", fingerprint=result.fingerprint, approvers=("U0APPROVER1",))


def _assert_restored(arm: FakeArm, change: Change, server_set: frozenset[str]) -> None:
    """After undo the resource holds its ``before`` properties again (null counts as absent); what the
    change created is gone."""
    now = arm.get(change.resource_id)
    if change.before is None:
        assert now is None, f"{change.resource_id} still exists after undo"
        return
    assert now is not None, f"{change.resource_id} was not re-created by undo"

    def props(doc: Any) -> dict[str, Any]:
        return {k: v for k, v in (doc.get("properties") or {}).items() if k not in server_set and v is not None}

    before, after = props(change.before), props(now)
    differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not differ, f"{change.resource_id}: undo did not restore {differ}"


GRAPH_ACTIONS = sorted(n for n, a in REGISTRY.items() if a.directory_permissions)


@pytest.mark.parametrize("name", GRAPH_ACTIONS)
def test_graph_action_keeps_the_contract(name: str, tmp_path: Path) -> None:
    """The same contract for an action that writes Microsoft Graph (FakeMsGraph, real HTTP): the docstring's
    playbook claims the finding; the plan is read-only and deterministic; apply (no PIM grant: a non-ARM scope),
    verify, a compliant re-plan; undo re-grants and a re-plan plans the removal again."""
    from remediator.findings.approles import finding as graph_finding
    from remediator.testing import FakeMsGraph

    action = REGISTRY[name]
    path = tmp_path / "example.yaml"
    path.write_text(docstring_playbook(action), encoding="utf-8")
    playbook = load_playbook_file(path)
    files_read_all = "01d4889c-1287-42c6-ac1f-5d1e02578ef6"
    with FakeArm() as arm, FakeMsGraph() as graph:
        graph_sp = graph.add_microsoft_graph()
        app = graph.add_service_principal("exporter")
        graph.assign_app_role(app, graph_sp, files_read_all)
        clients = arm.clients(msgraph=graph.client())
        found = graph_finding(principal_id=app, app_role_id=files_read_all, source="test")
        planner = Planner(playbooks=PlaybookSet([playbook]), state=LiveState(clients), now=NOW, today=NOW.date())
        result = planner.plan_one(found)
        assert (result.playbook, result.outcome) == (playbook.name, "changes"), result.reason
        assert [r.method for r in graph.requests if r.method != "GET"] == []  # planning only reads
        assert planner.plan_one(found).fingerprint == result.fingerprint
        (change,) = result.changes
        assert change.operation == "delete"
        assert not is_arm_scope(action.grants(change)[0].scope)  # no PIM grant for a Graph application permission
        action.apply(clients, change)
        assert action.verify(LiveState(clients), change) is None
        assert planner.plan_one(found).outcome == "no_changes"
        undo = action.undo(change)
        action.apply(clients, undo)
        assert action.verify(LiveState(clients), undo) is None
        assert [c.operation for c in planner.plan_one(found).changes] == ["delete"]
        assert arm.writes == []  # nothing went to ARM
