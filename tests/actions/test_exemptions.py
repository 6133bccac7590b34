"""policy.limit-exemption: plans on the real exemption documents (getPolicyExemption and
listPolicyExemptionsForResourceGroup), the deterministic clock, never-exempt resolution through the
assignment (with a warning when the state lacks it), refusals, and apply / verify / undo through
azure-mgmt-resource's generic client against FakeArm under a PIM grant."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from remediator.actions.base import REGISTRY, PlanContext
from remediator.actions.change import Change, grant_scope
from remediator.azure.errors import Backoff
from remediator.azure.reader import LiveState
from remediator.azure.state import SavedState, StateReader
from remediator.errors import ActionError
from remediator.findings.model import Finding
from remediator.planning.planner import Planner
from remediator.playbooks import load_playbooks
from remediator.privilege.elevation import PimAssignElevator, Ticket
from remediator.testing import FakeArm
from tests.findings.test_operations import resource_write_event
from tests.support.builders import arm_fixture, make_finding, parse_one

ROOT = Path(__file__).resolve().parents[2]
SUB = "ae640e6b-ba3e-4256-9d62-2993eecfa6f2"
RG_SCOPE = f"/subscriptions/{SUB}/resourceGroups/demoCluster"
EXEMPTION = f"{RG_SCOPE}/providers/Microsoft.Authorization/policyExemptions/DemoExpensiveVM"
ASSIGNMENT = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policyAssignments/CostManagement"
STORAGE_POLICY = "/providers/Microsoft.Authorization/policyDefinitions/4fa4b6c0-31ca-4c0d-b10d-24b96f62a751"
EVENT_TIME = datetime(2018, 7, 19, 18, 38, 4, 611735, tzinfo=UTC)  # the docs sample's eventTime
EXEC = "0f3c2a51-8d7e-4b6a-9c21-7e5d4b3a2f10"
BROKER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"

ACTION = REGISTRY["policy.limit-exemption"]
# Resource Policy Contributor's actions (built-in-roles/management-and-governance.md)
ROLE_ACTIONS = ("*/read", "Microsoft.Authorization/policyassignments/*", "Microsoft.Authorization/policydefinitions/*",
                "Microsoft.Authorization/policyexemptions/*", "Microsoft.Authorization/policysetdefinitions/*",
                "Microsoft.PolicyInsights/*", "Microsoft.Support/*")


def exemption(**props: Any) -> dict[str, Any]:
    doc = arm_fixture("authorization__2022-07-01-preview__getPolicyExemption.json")  # Waiver, no expiresOn
    doc["properties"].update(props)
    return doc


def assignment(definition: str = STORAGE_POLICY, aid: str = ASSIGNMENT) -> dict[str, Any]:
    return {"id": aid, "name": aid.rsplit("/", 1)[-1], "type": "Microsoft.Authorization/policyAssignments",
            "properties": {"displayName": "Cost management", "policyDefinitionId": definition,
                           "scope": f"/subscriptions/{SUB}", "enforcementMode": "Default"}}


def event_finding(resource: str = EXEMPTION) -> Finding:
    return parse_one(resource_write_event(resource))


def plan(state: StateReader, finding: Finding | None = None, now: datetime | None = None,
         **params: Any) -> tuple[list[Change], list[str]]:
    ctx = PlanContext(finding=finding or event_finding(), state=state, now=now)
    return ACTION.plan(ctx, ACTION.parse_params(params)), ctx.warnings


# --- declarations --------------------------------------------------------------------------------------

def test_shipped_playbook_and_least_privilege() -> None:
    shipped = load_playbooks(ROOT / "playbooks").get("policy-limit-exemptions")
    assert shipped is not None
    assert (shipped.risk, shipped.approval.quorum) == ("high", 2)
    assert (ACTION.role.name, ACTION.role.id) == ("Resource Policy Contributor", "36243c78-bf99-498c-9df9-86d9f8d28608")
    for op in ACTION.permissions:
        assert any(fnmatch.fnmatchcase(op.lower(), a.lower()) for a in ROLE_ACTIONS), op


def test_parameter_refusals() -> None:
    for bad in ({"max_days": 0}, {"allowed_scopes": ["tenant"]}, {"allowed_categories": []},
                {"never_exempt": ["Storage public access"]}, {"expired": "set-expiry"}, {"maxdays": 3}):
        with pytest.raises(ValidationError):
            ACTION.parse_params(bad)


# --- plan ------------------------------------------------------------------------------------------------

def test_no_expiry_gets_one_max_days_after_the_event_time_and_says_so() -> None:
    (change,), warnings = plan(SavedState([exemption()]), max_days=30)
    assert change.operation == "update"
    assert change.resource_id == EXEMPTION
    assert change.after["properties"]["expiresOn"] == "2018-08-18T18:38:04Z"  # type: ignore[index]
    assert {k: v for k, v in change.after["properties"].items() if k != "expiresOn"} == \
        change.before["properties"]  # type: ignore[index]
    assert "no expiry" in change.note
    assert "the finding's event time" in change.note
    assert warnings == []
    again, _ = plan(SavedState([exemption()]), max_days=30)
    assert again[0].to_json() == change.to_json()  # deterministic: a re-plan gives the same fingerprint


def test_the_planner_clock_wins_and_a_finding_without_time_uses_today() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    (change,), _ = plan(SavedState([exemption()]), now=now, max_days=10)
    assert change.after["properties"]["expiresOn"] == "2026-03-11T12:00:00Z"  # type: ignore[index]
    assert "the planner's clock" in change.note
    bare = make_finding(EXEMPTION, kind="operation", type="microsoft.authorization/policyexemptions/write")
    (change,), _ = plan(SavedState([exemption()]), finding=bare)
    assert "the start of today" in change.note


def test_expiry_too_far_is_shortened_and_a_near_one_is_left_alone() -> None:
    far = exemption(expiresOn="2019-12-31T00:00:00Z", exemptionCategory="Mitigated")
    (change,), _ = plan(SavedState([far]), max_days=90)
    assert change.after["properties"]["expiresOn"] == "2018-10-17T18:38:04Z"  # type: ignore[index]
    near = exemption(expiresOn="2018-08-01T00:00:00.0000000Z", exemptionCategory="Mitigated")
    assert plan(SavedState([near]), max_days=90)[0] == []


def test_expired_is_deleted_or_kept() -> None:
    old = exemption(expiresOn="2018-01-01T00:00:00Z")
    (change,), _ = plan(SavedState([old]))
    assert change.operation == "delete"
    assert "expired on 2018-01-01T00:00:00Z" in change.note
    assert "evaluated against" in change.note
    assert plan(SavedState([old]), expired="keep")[0] == []


def test_too_wide_scope_and_category() -> None:
    listed = arm_fixture("authorization__2022-07-01-preview__listPolicyExemptionsForResourceGroup.json")["value"]
    sub_waiver, rg_mitigated = listed  # a subscription-scope Waiver and a resource-group-scope Mitigated one
    for doc in listed:
        doc["properties"]["expiresOn"] = "2018-08-01T00:00:00Z"
    state = SavedState(listed)
    (change,), _ = plan(state, event_finding(sub_waiver["id"]), allowed_scopes=["resourceGroup", "resource"])
    assert change.operation == "delete"
    assert "subscription scope" in change.note
    assert plan(state, event_finding(rg_mitigated["id"]), allowed_scopes=["resourceGroup"],
                allowed_categories=["Mitigated"])[0] == []
    (change,), _ = plan(state, event_finding(sub_waiver["id"]), allowed_categories=["Mitigated"], too_wide="set-expiry",
                        max_days=5)
    assert change.operation == "update"
    assert "category Waiver" in change.note


def test_never_exempt_through_the_assignment_and_its_warning_when_missing() -> None:
    doc = exemption(expiresOn="2018-08-01T00:00:00Z", exemptionCategory="Mitigated")
    (change,), warnings = plan(SavedState([doc, assignment()]), never_exempt=["4fa4b6c0-31ca-4c0d-b10d-24b96f62a751"])
    assert change.operation == "delete"
    assert f"exempts {STORAGE_POLICY}, listed in never_exempt" in change.note
    assert warnings == []
    assert plan(SavedState([doc, assignment("/providers/Microsoft.Authorization/policyDefinitions/other")]),
                never_exempt=[STORAGE_POLICY])[0] == []
    changes, warnings = plan(SavedState([doc]), never_exempt=[STORAGE_POLICY])
    assert changes == []
    assert warnings == [f"policy assignment {ASSIGNMENT} not in the resource state: its policy definition was not "
                        f"checked against never_exempt; add it with `az resource show --ids {ASSIGNMENT} > "
                        "CostManagement.json` to the --resources folder"]


def test_never_exempt_inside_an_initiative_respects_the_reference_ids() -> None:
    initiative = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/policySetDefinitions/guardrails"
    members = {"id": initiative, "type": "Microsoft.Authorization/policySetDefinitions", "name": "guardrails",
               "properties": {"policyDefinitions": [
                   {"policyDefinitionId": STORAGE_POLICY, "policyDefinitionReferenceId": "Storage_Public"},
                   {"policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/skus",
                    "policyDefinitionReferenceId": "Limit_Skus"}]}}
    doc = exemption(expiresOn="2018-08-01T00:00:00Z", exemptionCategory="Mitigated")  # references Limit_Skus only
    state = SavedState([doc, assignment(initiative), members])
    assert plan(state, never_exempt=[STORAGE_POLICY])[0] == []
    doc["properties"]["policyDefinitionReferenceIds"] = ["Storage_Public"]
    (change,), _ = plan(SavedState([doc, assignment(initiative), members]), never_exempt=[STORAGE_POLICY])
    assert change.operation == "delete"
    assert "(in " in change.note
    _, warnings = plan(SavedState([doc, assignment(initiative)]), never_exempt=[STORAGE_POLICY])
    assert warnings[0].startswith(f"policy set definition {initiative} not in the resource state")


def test_refusals() -> None:
    with pytest.raises(ActionError, match="policy exemption not found in the resource state"):
        plan(SavedState([]))
    with pytest.raises(ActionError, match="expected a policy exemption"):
        plan(SavedState([]), make_finding(RG_SCOPE))
    with pytest.raises(ActionError, match="is not a date-time"):
        plan(SavedState([exemption(expiresOn="next tuesday")]))


def test_planner_and_cli_json_carry_the_warning(tmp_path: Path) -> None:
    from remediator.app.cli import main

    pb = load_playbooks(ROOT / "playbooks")
    (result,) = Planner(playbooks=pb, state=SavedState([exemption()])).plan([event_finding()])
    assert result.outcome == "changes"
    assert result.playbook == "policy-limit-exemptions"
    assert result.warnings
    assert result.warnings[0].startswith(f"policy assignment {ASSIGNMENT} not in the resource")
    (tmp_path / "event.json").write_text(json.dumps([resource_write_event()]), encoding="utf-8")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "exemption.json").write_text(json.dumps(exemption()), encoding="utf-8")
    import io

    out = io.StringIO()
    code = main(["plan", str(tmp_path / "event.json"), "--resources", str(tmp_path / "state"), "--playbooks",
                 str(ROOT / "playbooks"), "--output", "json"], out=out)
    assert code == 2
    (row,) = json.loads(out.getvalue())["results"]
    assert row["outcome"] == "changes"
    assert len(row["warnings"]) == 1
    out = io.StringIO()
    main(["plan", str(tmp_path / "event.json"), "--resources", str(tmp_path / "state"), "--playbooks",
          str(ROOT / "playbooks")], out=out)
    assert "#   warning: policy assignment" in out.getvalue()
    assert "1 warning: not everything could be checked" in out.getvalue()


# --- apply under a PIM grant, verify, undo ---------------------------------------------------------------

@pytest.fixture
def arm() -> Iterator[FakeArm]:
    with FakeArm() as fake:
        fake.load([exemption(), assignment()])
        fake.enforce_grants(EXEC, role_id=ACTION.role.id)
        yield fake


def _under_grant(arm: FakeArm, change: Change) -> None:
    ticket = Ticket(remediation_id="rem-ex", fingerprint="sha256:" + "ab" * 32)
    elevator = PimAssignElevator(broker=arm.clients(principal_id=BROKER), executor_principal_id=EXEC,
                                 sleep=lambda _s: None, poll_interval=0.01, poll_timeout=1.0,
                                 propagation_backoff=Backoff(initial=0.01, cap=0.02))
    executor = arm.clients(principal_id=EXEC)
    grant = elevator.elevate(action=ACTION, change=change, ticket=ticket)
    assert grant.scope == RG_SCOPE == grant_scope(change)  # the scope the exemption is attached to
    try:
        elevator.run(grant, lambda: ACTION.apply(executor, change), clients=executor)
    finally:
        elevator.release(grant)


def test_set_expiry_then_undo_removes_it_again(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    (change,), _ = plan(live, max_days=30)
    assert arm.writes == []
    with pytest.raises(ActionError, match="403 AuthorizationFailed"):
        ACTION.apply(arm.clients(principal_id=EXEC), change)
    arm.reset_log()
    _under_grant(arm, change)
    (put,) = arm.resource_writes
    assert (put.method, put.path, put.query["api-version"]) == ("PUT", EXEMPTION, "2022-07-01-preview")
    assert put.body == {"properties": {**exemption()["properties"], "expiresOn": "2018-08-18T18:38:04Z"}}
    assert ACTION.verify(live, change) is None
    undo = ACTION.undo(change)
    _under_grant(arm, undo)
    assert "expiresOn" not in arm.get(EXEMPTION)["properties"]  # type: ignore[index]
    assert ACTION.verify(live, undo) is None
    assert "expiresOn is None, planned '2018-08-18T18:38:04Z'" in (ACTION.verify(live, change) or "")


def test_delete_then_undo_recreates_it(arm: FakeArm) -> None:
    live = LiveState(arm.clients())
    (change,), _ = plan(live, never_exempt=[STORAGE_POLICY])
    assert change.operation == "delete"
    _under_grant(arm, change)
    assert arm.get(EXEMPTION) is None
    assert ACTION.verify(live, change) is None
    undo = ACTION.undo(change)
    assert undo.operation == "create"
    _under_grant(arm, undo)
    restored = arm.get(EXEMPTION)
    assert restored is not None
    assert restored["properties"] == exemption()["properties"]
    assert ACTION.verify(live, undo) is None
